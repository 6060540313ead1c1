-- GET with a Simple JWT access token in the Authorization header; one token a line.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()

function request()
  return wrk.format("GET", wrk.path, {["Authorization"] = "Bearer " .. common.cred()})
end
