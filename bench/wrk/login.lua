-- POST a JSON login, cycling through bench users (one username a line). With
-- BENCH_CSRF set, sends the CSRF cookie and header as our login requires.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
common.install()
local csrf = os.getenv("BENCH_CSRF") or ""
local password = os.getenv("BENCH_PASSWORD")

function request()
  local headers = {["Content-Type"] = "application/json"}
  if csrf ~= "" then
    headers["Cookie"] = "csrftoken=" .. csrf
    headers["X-CSRFToken"] = csrf
  end
  local body = '{"username": "' .. common.cred() .. '", "password": "' .. password .. '"}'
  return wrk.format("POST", wrk.path, headers, body)
end
