-- POST our refresh endpoint: a fresh single-use refresh cookie per request, with
-- the CSRF cookie and the matching X-CSRFToken header, as the SPA sends them.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()
local csrf = os.getenv("BENCH_CSRF")

function request()
  local _, refresh = common.split_tab(common.cred())
  return wrk.format("POST", wrk.path, {
    ["Cookie"] = refresh .. "; csrftoken=" .. csrf,
    ["X-CSRFToken"] = csrf,
  })
end
