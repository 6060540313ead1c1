-- POST Simple JWT's TokenRefreshView: a fresh single-use refresh token per request
-- in the JSON body, as its clients send it.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()

function request()
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"},
    '{"refresh": "' .. common.cred() .. '"}')
end
