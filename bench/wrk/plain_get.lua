-- GET with no credentials: the no-auth floor.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()

function request()
  common.cred()
  return wrk.format("GET", wrk.path)
end
