-- wrk script: POST /feedback, one event per request. Each connection posts
-- its own user; items cycle through 1000 IDs.
local counter = 0
local threadid = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  local body = string.format('{"user_id":"b%d","item_id":"%d","event":"watch"}', tid, n % 1000)
  return wrk.format(nil, "/feedback", nil, body)
end
function response(status, headers, body)
  if status ~= 200 then
    bad = (bad or 0) + 1
  end
end
