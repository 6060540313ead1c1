-- GET with a Django session cookie; one "sessionid=..." a line.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()

function request()
  return wrk.format("GET", wrk.path, {["Cookie"] = common.cred()})
end
