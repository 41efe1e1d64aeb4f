-- wrk script: POST /feedback with batches of 100 events per request.
local counter = 0
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
  local ev = {}
  for i = 1, 100 do
    n = n + 1
    ev[i] = string.format('{"user_id":"b%d-%d","item_id":"%d","event":"like"}', tid, n % 5000, n % 1000)
  end
  return wrk.format(nil, "/feedback", nil, '{"events":[' .. table.concat(ev, ",") .. ']}')
end
