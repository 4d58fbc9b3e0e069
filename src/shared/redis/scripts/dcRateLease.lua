--[[
  Takes a lease of tokens from a key's fleet-wide rate-limit counter (src/api/key-budget.ts). The window
  starts with the fleet's first lease (the counter is created with the window's expiry), so no clock
  alignment is needed and every process learns the window's end from the counter's own expiry.
  One script rather than MULTI: ioredis builds each MULTI's pipeline with a copy of every defined script.

  Input:
    KEYS[1] the key's counter

    ARGV[1] the window's length, ms
    ARGV[2] the tokens asked for

  Output:
    { the counter after this lease (it may pass the limit: the caller grants only what is under it),
      the counter's time to live in ms }
]]
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local total = redis.call('INCRBY', KEYS[1], ARGV[2])
return { total, redis.call('PTTL', KEYS[1]) }
