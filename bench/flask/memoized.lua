-- wrk script of the flask group's memoized route: each request asks for the
-- next of /memoized/0 .. /memoized/63 in turn, so the requests in flight
-- call the memoized function with different arguments (all hits: the group
-- calls each once before timing). With one argument for every request,
-- cachette's single flight would share one entry read among a worker's
-- concurrent calls, which Flask-Caching does not do.
local n = -1
request = function()
  n = (n + 1) % 64
  return wrk.format("GET", "/memoized/" .. n)
end
