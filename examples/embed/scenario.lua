-- Runs inside examples/embed's own program: uses its native module and
-- sonde's scheduler together. Exits non-zero if anything is off.
local greeter = require("greeter")
local task = require("sonde.task")

local results = { task.gather(
  function() task.sleep(0.02) return greeter.greet("second") end,
  function() task.sleep(0.01) return greeter.greet("first") end) }
assert(results[1] == "hello, second" and results[2] == "hello, first", "gather kept the order of its functions")
print(greeter.greet("embedder") .. " (from " .. tostring(arg[0]) .. ")")
