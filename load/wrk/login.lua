-- wrk script: every request logs in one existing user (register it first:
-- see the README's performance section), paying one argon2id verification.
--   wrk -t2 -c8 -d20s --latency -s load/wrk/login.lua http://127.0.0.1:3000
wrk.method = "POST"
wrk.path = "/api/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"wrk-login@example.com","password":"correct horse battery"}'

function response(status, headers, body)
   if status ~= 200 then
      io.stderr:write("unexpected status " .. status .. "\n")
   end
end
