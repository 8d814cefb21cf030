-- wrk script: GET /api/products/{id} over the ids in the file named by
-- PRODUCT_IDS (one id a line), picked at random per request.
local ids = {}
for line in io.lines(os.getenv("PRODUCT_IDS")) do
   ids[#ids + 1] = line
end
math.randomseed(os.time())

function request()
   return wrk.format("GET", "/api/products/" .. ids[math.random(#ids)])
end

function response(status, headers, body)
   if status ~= 200 then
      io.stderr:write("unexpected status " .. status .. "\n")
   end
end
