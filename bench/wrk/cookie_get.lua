-- GET with our access cookie; lines are "<access cookie>\t<refresh cookie>".
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()

function request()
  local access = common.split_tab(common.cred())
  return wrk.format("GET", wrk.path, {["Cookie"] = access})
end
