-- wrk script: each request registers a new user (unique email per thread
-- and request), so every request pays one argon2id hash and one atomic
-- store write.
--   wrk -t2 -c8 -d20s --latency -s load/wrk/register.lua http://127.0.0.1:3000
local counter = 0
math.randomseed(os.time())

-- Runs in the main state: gives each thread's state a distinct global id.
function setup(thread)
   thread:set("thread_id", math.random(1, 1000000000))
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"email":"wrk-%d-%d@example.com","password":"correct horse battery","name":"Load Test"}',
      thread_id, counter)
   return wrk.format("POST", "/api/auth/register", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
   if status ~= 201 then
      io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
   end
end
