-- wrk: one scenario of bench/run.py, chosen by SCENARIO, over lines of DATA_FILE.
--   preview: GET /api/v1/invites/{code}, a random known code per request
--   join:    POST /api/v1/groups/join, line "code token": every request a new user
--   create:  POST /api/v1/groups/{id}/invites, line "group_id token" (an owner)
--   list:    GET /api/v1/groups/{id}/invites, line "group_id token" (an owner)
local scenario = os.getenv("SCENARIO")
local lines = {}
local next_line = 0

init = function(args)
  for line in io.lines(os.getenv("DATA_FILE")) do lines[#lines + 1] = line end
end

local function fields(line)
  local a, b = line:match("^(%S+) (%S+)$")
  return a, b
end

request = function()
  if scenario == "preview" then
    return wrk.format("GET", "/api/v1/invites/" .. lines[math.random(#lines)])
  elseif scenario == "join" then
    -- In order: each line's user joins once.
    next_line = next_line % #lines + 1
    local code, token = fields(lines[next_line])
    return wrk.format("POST", "/api/v1/groups/join",
      {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
      '{"code": "' .. code .. '"}')
  elseif scenario == "create" then
    local group, token = fields(lines[math.random(#lines)])
    return wrk.format("POST", "/api/v1/groups/" .. group .. "/invites",
      {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
      '{"max_uses": 5}')
  else
    local group, token = fields(lines[math.random(#lines)])
    return wrk.format("GET", "/api/v1/groups/" .. group .. "/invites",
      {["Authorization"] = "Bearer " .. token})
  end
end
