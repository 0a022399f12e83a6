-- peek_set.lua: read only; one page of a scheduled / retry / dead set for
-- the admin listings, with at most ARGV[4] bytes of each record and a
-- bounded error history, so a page of huge jobs stays small.
--
-- An error history longer than ARGV[5] bytes is decoded, each entry's text
-- cut to ARGV[6] bytes (at a character boundary) and, while still too long,
-- its oldest entries dropped; one that does not decode is returned as false.
--
-- KEYS[1] the set  KEYS[2] jobs  KEYS[3] errors
-- ARGV[1] start  ARGV[2] stop (ranks, inclusive)  ARGV[3] '1' = highest
-- score first (dead), '0' = lowest first  ARGV[4] most bytes per record
-- ARGV[5] most bytes of error history per job  ARGV[6] most bytes per error text
-- Returns {set size, id1, score1, size1, head1, errors1, id2, …}; a job whose
-- record vanished has size 0 and head false.
local range = ARGV[3] == '1' and 'ZREVRANGE' or 'ZRANGE'
local max = tonumber(ARGV[4])
local errors_max = tonumber(ARGV[5])
local text_max = tonumber(ARGV[6])
local out = {redis.call('ZCARD', KEYS[1])}
local entries = redis.call(range, KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
for i = 1, #entries, 2 do
  local id = entries[i]
  local record = redis.call('HGET', KEYS[2], id)
  local errors = redis.call('HGET', KEYS[3], id)
  if errors and #errors > errors_max then
    local ok, history = pcall(cjson.decode, errors)
    errors = false
    if ok and type(history) == 'table' then
      for _, entry in ipairs(history) do
        if type(entry) == 'table' and type(entry.error) == 'string' then
          entry.error = spool_cap_text(entry.error, text_max)
        end
      end
      local encoded = cjson.encode(history)
      while #encoded > errors_max and #history > 1 do
        table.remove(history, 1)
        encoded = cjson.encode(history)
      end
      if #encoded <= errors_max then
        errors = encoded
      end
    end
  end
  out[#out + 1] = id
  out[#out + 1] = entries[i + 1]
  out[#out + 1] = record and #record or 0
  out[#out + 1] = record and string.sub(record, 1, max) or false
  out[#out + 1] = errors or false
end
return out
