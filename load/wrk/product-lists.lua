-- wrk script: GET /api/products with a rotating mix of filters: the first
-- page of each, as a storefront shows it.
local queries = {
   "", "?limit=50", "?category=Electronics", "?category=Books&maxPrice=30",
   "?q=wireless", "?inStock=true&minPrice=20", "?category=Electronics&q=laptop&inStock=true",
   "?maxPrice=15",
}
local i = 0

function request()
   i = i + 1
   return wrk.format("GET", "/api/products" .. queries[(i % #queries) + 1])
end

function response(status, headers, body)
   if status ~= 200 then
      io.stderr:write("unexpected status " .. status .. "\n")
   end
end
