-- wrk script: POST /api/orders as the user of TOKEN, one or two lines of
-- random products from the file named by PRODUCT_IDS (all with stock).
local ids = {}
for line in io.lines(os.getenv("PRODUCT_IDS")) do
   ids[#ids + 1] = line
end
local token = os.getenv("TOKEN")
math.randomseed(os.time())

function request()
   local body = string.format('{"items":[{"productId":"%s","quantity":%d},{"productId":"%s","quantity":1}]}',
      ids[math.random(#ids)], math.random(1, 3), ids[math.random(#ids)])
   return wrk.format("POST", "/api/orders",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
   if status ~= 201 then
      io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
   end
end
