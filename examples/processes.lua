-- Shows child processes as tasks: three commands run at once, each waited
-- on without blocking the others; a slow one is stopped by a timeout.
local process = require("sonde.process")
local task = require("sonde.task")

local started = task.now()
local words = { task.gather(
  function() local _, out = process.run { "sh", "-c", "sleep 0.2; echo one" } return out end,
  function() local _, out = process.run { "sh", "-c", "sleep 0.2; echo two" } return out end,
  function() local _, out = process.run { "sh", "-c", "sleep 0.2; echo three" } return out end) }
local elapsed = task.now() - started
print(string.format("three 0.2 s commands ran side by side in %.2f s: %s", elapsed,
  table.concat(words):gsub("\n", " ")))

local slow = process.spawn { "sleep", "30" }
local ok, err = pcall(slow.wait, slow, 0.1)
print("waiting on a slow command: " .. tostring(err))
print("stopping it: exit code", slow:stop(5))
assert(not ok and not slow:running())
