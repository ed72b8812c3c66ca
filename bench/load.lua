-- wrk script for the benchmarks. BENCH_MODE: ceiling | ingest | batch | consent.
-- BENCH_DEVICES names a file of "token device_id" lines; every request gets a
-- capture time no other request uses, so no upload is a duplicate.
local mode = os.getenv("BENCH_MODE")
local base = tonumber(os.getenv("BENCH_BASE_EPOCH"))
local batch_size = tonumber(os.getenv("BENCH_BATCH") or "500")
local devices = {}
local counter = 0
local threads = 1
local next_id = 0

-- Runs in wrk's main Lua state: gives each thread's state its own global "id".
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_DEVICES")) do
    local token, device = line:match("(%S+) (%S+)")
    devices[#devices + 1] = {token, device}
  end
  threads = tonumber(os.getenv("BENCH_THREADS") or "2")
end

local function point(t, n)
  local lat = 22.0 + (n % 1000) / 100.0
  local lon = 113.0 + (n % 777) / 100.0
  return string.format('{"latitude":%.6f,"longitude":%.6f,"accuracy_m":12,"captured_at":"%s"}',
    lat, lon, os.date("!%Y-%m-%dT%H:%M:%SZ", t))
end

function request()
  counter = counter + 1
  local serial = counter * threads + id
  local d = devices[(serial % #devices) + 1]
  local headers = {["Authorization"] = "Bearer " .. d[1], ["Content-Type"] = "application/json"}
  if mode == "ceiling" then
    return wrk.format("POST", "/bench/jwt", headers, point(base - serial, serial))
  elseif mode == "ingest" then
    return wrk.format("POST", "/v1/devices/" .. d[2] .. "/locations", headers, point(base - serial, serial))
  elseif mode == "batch" then
    local items = {}
    for i = 1, batch_size do
      -- a day before the single reports' times, so no item repeats one of them
      items[i] = point(base - 86400 - serial * batch_size - i, serial + i)
    end
    return wrk.format("POST", "/v1/devices/" .. d[2] .. "/locations/batch", headers,
      '{"locations":[' .. table.concat(items, ",") .. ']}')
  else
    local value = (math.floor(serial / #devices) % 2 == 0) and "true" or "false"
    return wrk.format("PUT", "/v1/me/consents", headers, '{"consents":{"personalization":' .. value .. '}}')
  end
end

local bad = 0
function response(status, headers, body)
  if status >= 400 and status ~= 429 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
