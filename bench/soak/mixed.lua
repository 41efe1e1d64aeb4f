-- wrk script for the soak test (bench/soak/run.sh): one wrk process runs
-- only valid requests (SOAK_MODE=valid), another only invalid ones
-- (SOAK_MODE=invalid), so each answer's expected class is known without
-- matching answers to requests. Every thread counts answers by status
-- class; done() prints one line the runner parses:
--   SOAK <mode> requests=N 2xx=N 4xx=N other=N first_other=STATUS errors=N
-- IDs come from the file $SOAK_IDS ("u ID" / "i ID" lines, URL-safe).
-- A 1 ms (valid) or 2 ms (invalid) pause between requests on a connection
-- keeps the load steady and leaves CPU for the rest of the machine.
local mode = os.getenv("SOAK_MODE") or "valid"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function load_ids()
  local users, items = {}, {}
  local f = assert(io.open(os.getenv("SOAK_IDS"), "r"))
  for line in f:lines() do
    local kind, id = line:match("^(%a) (.+)$")
    if kind == "u" then users[#users + 1] = id elseif kind == "i" then items[#items + 1] = id end
  end
  f:close()
  return users, items
end

function init(args)
  n2xx, n4xx, nother, first_other = 0, 0, 0, 0
  reqs = {}
  local users, items = load_ids()
  local json = { ["Content-Type"] = "application/json" }
  local function add(method, path, headers, body)
    reqs[#reqs + 1] = wrk.format(method, path, headers, body)
  end
  if mode == "valid" then
    for j = 1, 200 do
      local u, i = users[(j * 7) % #users + 1], items[(j * 13) % #items + 1]
      local i2 = items[(j * 17) % #items + 1]
      add("GET", "/recommend?user_id=" .. u .. "&k=10")
      add("GET", "/recommend?user_id=" .. u .. "&k=5&filter_seen=false&exclude=" .. i)
      add("GET", "/recommend_cold?liked=" .. i .. "," .. i2 .. "&k=10")
      add("GET", "/similar_items?item_id=" .. i .. "&k=10")
      add("GET", "/similar_users?user_id=" .. u .. "&k=5")
      add("GET", "/items/" .. i)
      add("POST", "/invocations", json, '{"user_id": "' .. u .. '", "k": 5}')
      add("POST", "/invocations", json, '{"liked": ["' .. i .. '", "' .. i2 .. '"], "k": 5}')
      add("POST", "/recommend/batch", json, '{"users": ["' .. u .. '", "' .. users[j % #users + 1] .. '"], "k": 3}')
    end
    add("GET", "/ping")
    add("GET", "/health")
    add("GET", "/metrics")
  else
    local u, i = users[1], items[1]
    add("GET", "/recommend?user_id=no-such-user")              -- 404 unknown_user
    add("GET", "/recommend?user_id=" .. u .. "&k=0")           -- 400 invalid_k
    add("GET", "/recommend?user_id=" .. u .. "&k=abc")         -- 400
    add("GET", "/recommend?user_id=" .. u .. "&bogus=1")       -- 400 unknown_parameter
    add("GET", "/recommend?user_id=%zz")                       -- 400 invalid_encoding
    add("GET", "/recommend?user_id=a%00b")                     -- 400 invalid_id
    add("GET", "/recommend?user_id=" .. u .. "&user_id=" .. u) -- 400 duplicate
    add("GET", "/recommend")                                   -- 400 missing_parameter
    add("GET", "/recommend_cold?liked=nope1,nope2")            -- 404 / 400
    add("GET", "/similar_items?item_id=nope")                  -- 404 unknown_item
    add("GET", "/items/nope")                                  -- 404
    add("GET", "/items/../../etc/passwd")                      -- 404
    add("GET", "/no/such/route")                               -- 404
    add("DELETE", "/ping")                                     -- 405
    add("GET", "/invocations")                                 -- 405
    add("POST", "/invocations", json, '{"user_id": "' .. u .. '"')  -- 400 invalid_json
    add("POST", "/invocations", json, '{"userId": "x"}')       -- 400 unknown_field
    add("POST", "/invocations", json, '{"user_id": 1.5}')      -- 400 invalid_type
    add("POST", "/invocations", json, "")                      -- 400 empty body
    add("POST", "/invocations", json, string.rep(" ", 5000))   -- 413 (server --max-body 4096)
    add("POST", "/recommend/batch", json, '{"users": []}')     -- 400
    add("POST", "/admin/reload", { Authorization = "Bearer wrong" })  -- 401
  end
end

function delay()
  return mode == "valid" and 1 or 2
end

function request()
  idx = (idx or 0) % #reqs + 1
  return reqs[idx]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    n2xx = n2xx + 1
  elseif status >= 400 and status < 500 then
    n4xx = n4xx + 1
  else
    nother = nother + 1
    if first_other == 0 then first_other = status end
  end
end

function done(summary, latency, requests)
  local a, b, c, f = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n2xx")
    b = b + t:get("n4xx")
    c = c + t:get("nother")
    if f == 0 then f = t:get("first_other") end
  end
  local e = summary.errors
  io.write(string.format("SOAK %s requests=%d 2xx=%d 4xx=%d other=%d first_other=%d errors=%d " ..
                         "(connect %d read %d write %d timeout %d) p99_ms=%.2f\n",
                         mode, summary.requests, a, b, c, f,
                         e.connect + e.read + e.write + e.timeout,
                         e.connect, e.read, e.write, e.timeout, latency:percentile(99) / 1000))
end
