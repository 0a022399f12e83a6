-- peek_ready.lua: read only; one page of the ready jobs (every priority,
-- in fetch order) for the admin
-- listings, with at most ARGV[3] bytes of each record, so a page of 10 MiB
-- jobs sends a few KiB per job (the single-job view reads the whole record).
--
-- KEYS[1] ready
-- ARGV[1] offset from the fetch end (0 = next to be fetched)
-- ARGV[2] entries to read  ARGV[3] most bytes returned per record
-- Returns {list length, size1, head1, size2, head2, …} in fetch order, where
-- size is the record's whole length and head its first bytes.
local max = tonumber(ARGV[3])
local out = {spool_ready_len(KEYS[1])}
spool_walk_ready(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), function(record)
  out[#out + 1] = #record
  out[#out + 1] = string.sub(record, 1, max)
  return false
end)
return out
