-- sonde.task: ordering, cancellation, timeouts, errors, and the primitives.
-- No assertion here depends on how fast the machine is: waits are ordered
-- against each other, never against wall-clock budgets.
local task = require("sonde.task")

describe("task.spawn and join", function()
  it("runs tasks in the order they were spawned", function()
    local order = {}
    local a = task.spawn(function() order[#order + 1] = "a" end)
    local b = task.spawn(function() order[#order + 1] = "b" end)
    a:join()
    b:join()
    assert.are.same({ "a", "b" }, order)
  end)

  it("returns every result of the function and passes arguments", function()
    local h = task.spawn(function(x, y) return x + y, x * y, nil end, 3, 4)
    assert.are.same({ 7, 12, nil }, { h:join() })
    assert.is_true(h:done())
  end)

  it("keeps a spawn's arguments in a table of their size, also in compiled code", function()
    -- Loaded apart: a spec file's own functions are never compiled.
    local spawn_many = loadstring([[
      local task, nop, n = ...
      local ts = {}
      for i = 1, n do ts[i] = task.spawn(nop, 1, i, "GET", false, "") end
      return ts]], "=spawn_many")
    local function nop() end
    for _, t in ipairs(spawn_many(task, nop, 1000)) do t:join() end -- hot enough to be compiled
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    local ts = spawn_many(task, nop, 1000)
    local bytes_each = (collectgarbage("count") - before) * 1024 / 1000
    collectgarbage("restart")
    for _, t in ipairs(ts) do t:join() end
    assert.is_true(bytes_each < 800, string.format("%.0f bytes for each spawn", bytes_each))
  end)

  it("wakes sleepers in deadline order, not spawn order", function()
    local order = {}
    local ts = {}
    for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
      ts[#ts + 1] = task.spawn(function() task.sleep(d) order[#order + 1] = d end)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.are.same({ 0.01, 0.02, 0.03 }, order)
  end)

  it("sleep(0) lets every other ready task run first", function()
    local order = {}
    local a = task.spawn(function()
      order[#order + 1] = "a1"
      task.sleep(0)
      order[#order + 1] = "a2"
    end)
    local b = task.spawn(function() order[#order + 1] = "b" end)
    a:join()
    b:join()
    assert.are.same({ "a1", "b", "a2" }, order)
  end)

  it("re-raises the task's error at join, with the task's traceback", function()
    local h = task.spawn(function() error("inner failure") end)
    local ok, err = pcall(h.join, h)
    assert.is_false(ok)
    assert.matches("inner failure", tostring(err))
    assert.matches("task_spec.lua", err.traceback)
  end)

  it("re-raises table errors as the same object", function()
    local obj = { code = 42 }
    local h = task.spawn(function() error(obj) end)
    local ok, err = pcall(h.join, h)
    assert.is_false(ok)
    assert.are.equal(obj, err)
  end)

  it("join with a timeout raises a timeout error and leaves the task running", function()
    local ev = task.event()
    local h = task.spawn(function() ev:wait() return "late" end)
    local ok, err = pcall(h.join, h, 0.01)
    assert.is_false(ok)
    assert.is_true(task.is_timeout(err))
    assert.matches("^timeout", tostring(err))
    ev:set()
    assert.are.equal("late", h:join())
  end)

  it("errors name a task by its body's file:line, also a callable table's", function()
    local ev = task.event()
    local line = debug.getinfo(1, "l").currentline + 1
    local h = task.spawn(function() ev:wait() end)
    local ok, err = pcall(h.join, h, 0.01)
    assert.is_false(ok)
    assert.are.equal("timeout: join of task<task_spec.lua:" .. line .. "> did not finish within 0.01s", tostring(err))
    local callable = setmetatable({}, { __call = function() ev:wait() end })
    assert.are.equal("task<task_spec.lua:" .. (line + 4) .. ">", tostring(task.spawn(callable)))
    ev:set()
  end)

  it("a task cannot join itself", function()
    local me
    me = task.spawn(function()
      local ok, err = pcall(function() me:join() end)
      return ok, err
    end)
    local ok, err = me:join()
    assert.is_false(ok)
    assert.matches("^[^:]*task_spec.lua:%d+: join: task<.*> cannot join itself", err)
  end)

  it("a task joining itself in a tail call is not placed at a line of sonde's", function()
    local me
    me = task.spawn(function() return me:join() end) -- the tail call leaves no frame of this file
    local ok, err = pcall(me.join, me)
    assert.is_false(ok)
    assert.matches("^join: task<.*> cannot join itself", task.describe(err))
  end)

  it("rejects a non-function with a clear error", function()
    assert.has_error(function() task.spawn(42) end, "task.spawn: expected a function, got number")
  end)
end)

describe("what a sleeping task costs", function()
  -- A coroutine is 472 bytes (LuaJIT's 47-slot stack and its state), a
  -- task's table 256; with the arrays that list it, about 760 (1500 before
  -- issue 18). Its stack grown to 102 slots would add 440, its table grown
  -- to 16 nodes 192. (A function calling task.sleep, once compiled, still
  -- grows its stack: see task.sleep.)
  it("is under 900 bytes of Lua heap with task.sleep as the body", function()
    local n, tasks = 2000, {}
    collectgarbage()
    collectgarbage("stop") -- no collection, so no stack shrinks either, while it counts
    local before = collectgarbage("count")
    for i = 1, n do tasks[i] = task.spawn(task.sleep, 60) end
    task.sleep(0) -- each runs to its sleep
    local bytes = (collectgarbage("count") - before) * 1024 / n
    collectgarbage("restart")
    for i = 1, n do tasks[i]:cancel() end
    assert.is_true(bytes < 900, string.format("%.0f bytes a sleeping task", bytes))
  end)
end)

describe("cancellation", function()
  it("raises a cancellation at the wait and stops the timer it waited on", function()
    local reached, caught = false, nil
    local h = task.spawn(function()
      local ok, err = pcall(task.sleep, 3600)
      caught = err
      if ok then reached = true end
    end)
    task.sleep(0)
    assert.is_true(h:cancel("stop"))
    h:join()
    assert.is_false(reached)
    assert.is_true(task.is_cancelled(caught))
    assert.matches("cancelled: stop", tostring(caught))
  end)

  it("a task cancelled before it starts never runs", function()
    local ran = false
    local h = task.spawn(function() ran = true end)
    h:cancel()
    assert.has_error(function() h:join() end)
    assert.is_false(ran)
    assert.is_true(h:cancelled())
  end)

  it("cancelling a finished task does nothing", function()
    local h = task.spawn(function() return 1 end)
    h:join()
    assert.is_false(h:cancel())
    assert.are.equal(1, h:join())
  end)

  it("a cancelled task's waiters on an event are not woken twice", function()
    local ev = task.event()
    local woke = 0
    local h = task.spawn(function()
      pcall(ev.wait, ev)
      woke = woke + 1
    end)
    task.sleep(0)
    h:cancel()
    ev:set()
    h:join()
    task.sleep(0)
    assert.are.equal(1, woke)
  end)

  it("cancels tasks left running when the test ends (checked by the next test)", function()
    _G.__sonde_left_running = task.spawn(function() task.sleep(3600) end)
  end)

  it("...which the runner cancelled", function()
    local h = _G.__sonde_left_running
    _G.__sonde_left_running = nil
    assert.is_true(h:done())
    assert.is_true(h:cancelled())
  end)
end)

describe("task.timeout", function()
  it("returns the function's results when it finishes in time", function()
    assert.are.same({ 1, 2 }, { task.timeout(5, function(a) return a, 2 end, 1) })
  end)

  it("raises an error starting with 'timeout' and cancels the inner task", function()
    local cleaned = false
    local ok, err = pcall(task.timeout, 0.01, function()
      local sok = pcall(task.sleep, 3600)
      cleaned = not sok
    end)
    assert.is_false(ok)
    assert.matches("^timeout", tostring(err))
    task.sleep(0)
    assert.is_true(cleaned)
  end)

  it("passes the inner error through", function()
    local ok, err = pcall(task.timeout, 5, function() error("inside") end)
    assert.is_false(ok)
    assert.matches("inside", tostring(err))
  end)
end)

describe("task.gather", function()
  it("returns each function's result in argument order", function()
    local a, b, c = task.gather(
      function() task.sleep(0.02) return "a" end,
      function() return "b" end,
      function() task.sleep(0.01) return "c" end)
    assert.are.same({ "a", "b", "c" }, { a, b, c })
  end)

  it("the first error cancels the siblings and is raised", function()
    local sibling_cancelled = false
    local ok, err = pcall(task.gather,
      function()
        local sok, e = pcall(task.sleep, 3600)
        sibling_cancelled = not sok and task.is_cancelled(e)
      end,
      function() task.sleep(0.01) error("first failure") end)
    assert.is_false(ok)
    assert.matches("first failure", tostring(err))
    task.sleep(0)
    assert.is_true(sibling_cancelled)
  end)

  it("gather of nothing returns nothing", function()
    assert.are.equal(0, select("#", task.gather()))
  end)
end)

describe("errors in tasks", function()
  it("handles a task raising nil or a table without crashing", function()
    local h1 = task.spawn(function() error(nil) end)
    local h2 = task.spawn(function() error({ reason = "table" }) end)
    local ok1, e1 = pcall(h1.join, h1)
    local ok2, e2 = pcall(h2.join, h2)
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.matches("nil", task.describe(e1))
    assert.are.equal("table", e2.reason)
  end)

  it("describes an error whose __tostring fails", function()
    local bad = setmetatable({}, { __tostring = function() error("nope") end })
    assert.matches("__tostring failed", task.describe(bad))
  end)

  it("calling sleep outside a task is a clear error", function()
    local co = coroutine.create(function() task.sleep(0) end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("plain coroutine", err)
  end)

  it("rejects a non-number sleep", function()
    assert.has_error(function() task.sleep("1") end, "task.sleep: expected a number of seconds >= 0, got string")
  end)

  it("rejects a negative or NaN sleep at the caller's line (it returned at once)", function()
    for _, bad in ipairs({ { -1, "%-1" }, { 0 / 0, "nan" } }) do
      local ok, err = pcall(function() task.sleep(bad[1]) end)
      assert.is_false(ok)
      assert.matches("^[^:]*task_spec.lua:%d+: task.sleep: expected a number of seconds >= 0, got " .. bad[2] .. "$",
          err)
    end
    local ok, err = pcall(task.sleep, -0.5) -- called through pcall: the line that called pcall
    assert.is_false(ok)
    assert.matches("^[^:]*task_spec.lua:%d+: task.sleep: expected a number of seconds >= 0, got %-0.5$", err)
  end)
end)

describe("task.now and task.time", function()
  it("now is monotonic and moves with sleep", function()
    local t0 = task.now()
    task.sleep(0.02)
    assert.is_true(task.now() - t0 >= 0.019)
  end)

  it("time is epoch seconds", function()
    assert.is_true(math.abs(task.time() - os.time()) < 5)
  end)
end)

describe("task.event", function()
  it("wakes every waiter when set and stays set until cleared", function()
    local ev = task.event()
    local woken = 0
    local ts = {}
    for i = 1, 3 do ts[i] = task.spawn(function() ev:wait() woken = woken + 1 end) end
    task.sleep(0)
    assert.are.equal(0, woken)
    ev:set()
    for i = 1, 3 do ts[i]:join() end
    assert.are.equal(3, woken)
    assert.is_true(ev:is_set())
    assert.is_true(ev:wait())
    ev:clear()
    assert.is_false(ev:is_set())
  end)

  it("wait with a timeout raises a timeout error", function()
    local ok, err = pcall(task.event().wait, task.event(), 0.01)
    assert.is_false(ok)
    assert.matches("^timeout", tostring(err))
  end)

  it("many waiters that time out do not pile up", function()
    local ev = task.event()
    for _ = 1, 200 do pcall(ev.wait, ev, 0) end
    assert.is_true(#ev.waiters < 50)
  end)
end)

describe("task.future", function()
  it("set_result wakes waiters and result() returns it", function()
    local f = task.future()
    local got
    local h = task.spawn(function() got = f:wait() end)
    task.sleep(0)
    assert.is_false(f:done())
    f:set_result(5)
    h:join()
    assert.are.equal(5, got)
    assert.is_true(f:done())
    assert.are.equal(5, f:result())
    assert.is_nil(f:exception())
  end)

  it("set_exception makes wait and result raise it", function()
    local f = task.future()
    f:set_exception("broken")
    assert.has_error(function() f:wait() end, "broken")
    assert.are.equal("broken", f:exception())
  end)

  it("cancel marks it cancelled and raises a cancellation", function()
    local f = task.future()
    assert.is_true(f:cancel())
    assert.is_true(f:cancelled())
    assert.is_false(f:cancel())
    local ok, err = pcall(f.result, f)
    assert.is_false(ok)
    assert.is_true(task.is_cancelled(err))
  end)

  it("result() before done and setting twice are errors", function()
    local f = task.future()
    assert.has_error(function() f:result() end, "future is not done yet")
    f:set_result(1)
    assert.has_error(function() f:set_result(2) end)
  end)

  it("runs done callbacks after it completes, also when added late", function()
    local f = task.future()
    local seen = {}
    f:add_done_callback(function(x) seen[#seen + 1] = x:result() end)
    f:set_result("v")
    task.sleep(0)
    f:add_done_callback(function(x) seen[#seen + 1] = x:result() .. "2" end)
    task.sleep(0)
    assert.are.same({ "v", "v2" }, seen)
  end)

  it("wait with a timeout raises a timeout error", function()
    local ok, err = pcall(task.future().wait, task.future(), 0.01)
    assert.is_false(ok)
    assert.matches("^timeout", tostring(err))
  end)
end)

describe("task.channel", function()
  it("delivers values in order and ends with nil once closed", function()
    local ch = task.channel()
    task.spawn(function()
      for i = 1, 5 do ch:send(i) end
      ch:close()
    end)
    local got = {}
    for v in ch:iter() do got[#got + 1] = v end
    assert.are.same({ 1, 2, 3, 4, 5 }, got)
  end)

  it("a bounded channel makes the sender wait", function()
    local ch = task.channel(1)
    local sent = 0
    local h = task.spawn(function()
      for i = 1, 3 do
        ch:send(i)
        sent = i
      end
    end)
    task.sleep(0)
    assert.are.equal(1, sent)
    assert.are.equal(1, ch:recv())
    assert.are.equal(2, ch:recv())
    assert.are.equal(3, ch:recv())
    h:join()
    assert.are.equal(3, sent)
  end)

  it("recv with a timeout raises a timeout error", function()
    local ok, err = pcall(task.channel().recv, task.channel(), 0.01)
    assert.is_false(ok)
    assert.matches("^timeout", tostring(err))
  end)

  it("send on a closed channel, nil values and bad capacities are errors", function()
    local ch = task.channel()
    assert.has_error(function() ch:send(nil) end)
    ch:close()
    assert.has_error(function() ch:send(1) end, "channel:send: the channel is closed")
    assert.has_error(function() task.channel(0) end)
    assert.has_error(function() task.channel(1.5) end)
  end)
end)

describe("errors after a join timed out", function()
  it("are still reported as lost when nobody joins again", function()
    local support = require("specs.support")
    local code, out = support.sonde("test", "-o", "tap", support.fixture("join_timeout_lost.lua"))
    assert.are.equal(1, code, out)
    assert.matches("a task it spawned, task<join_timeout_lost.lua:4>: .*boom in child", out)
  end)
end)

describe("a bad timeout", function()
  it("is reported at the caller's line", function()
    local h = task.spawn(function() task.sleep(0.01) end)
    local ok, err = pcall(function() local x = h:join("soon") return x end)
    assert.is_false(ok)
    assert.matches("task_spec.lua:%d+: timeout must be a number of seconds >= 0, got string", err)
    h:join()
  end)

  it("is reported at the caller's line by every call that takes one", function()
    local ch, ev, fut = task.channel(), task.event(), task.future()
    for name, call in pairs({
      recv = function() ch:recv("1") end, send = function() task.channel(1):send(1, {}) end,
      ["event wait"] = function() ev:wait("x") end, ["future wait"] = function() fut:wait(0 / 0) end,
      ["task.wait"] = function() task.wait(ev, true) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok, name)
      assert.matches("^[^:]*task_spec.lua:%d+: timeout must be a number of seconds >= 0, got %a+$", err, nil, name)
    end
  end)

  it("a negative one is refused at the caller's line by every call that takes one", function()
    local ch, ev, fut = task.channel(), task.event(), task.future()
    local h = task.spawn(function() ev:wait() end)
    for name, call in pairs({
      join = function() h:join(-1) end, recv = function() ch:recv(-1) end, ["event wait"] = function() ev:wait(-1) end,
      ["future wait"] = function() fut:wait(-1) end, ["task.wait"] = function() task.wait(ev, -1) end,
      ["process wait"] = function() require("sonde.process").spawn({ "true" }):wait(-1) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok, name)
      assert.matches("^[^:]*task_spec.lua:%d+: timeout must be a number of seconds >= 0, got %-1$", err, nil, name)
    end
    ev:set()
    h:join()
  end)

  it("task.timeout refuses negative seconds and a body that is not a function at the caller's line", function()
    local ok, err = pcall(function() task.timeout(-1, function() end) end)
    assert.is_false(ok)
    assert.matches("^[^:]*task_spec.lua:%d+: task.timeout: expected a number of seconds >= 0, got %-1$", err)
    ok, err = pcall(function() task.timeout(1, nil) end)
    assert.is_false(ok)
    assert.matches("^[^:]*task_spec.lua:%d+: task.timeout: expected a function, got nil$", err)
  end)
end)

describe("a body that cannot be called", function()
  it("is reported at the caller's line by task.spawn_in and task.gather", function()
    local ok, err = pcall(function() task.spawn_in(task.current_scope(), nil) end)
    assert.is_false(ok)
    assert.matches("task_spec.lua:%d+: task.spawn_in: expected a function, got nil", err)
    ok, err = pcall(function() task.gather(function() end, 2) end)
    assert.is_false(ok)
    assert.matches("task_spec.lua:%d+: task.gather: argument 2: expected a function, got number", err)
  end)
end)

describe("a bare coroutine.yield() in a task", function()
  it("fails the task at once, at the line that yielded, saying what to use instead", function()
    local t = task.spawn(function()
      coroutine.yield("anything")
      error("never resumed")
    end)
    local ok, err = pcall(t.join, t) -- no timeout: the failure is immediate
    assert.is_false(ok)
    assert.matches("^[^:]*task_spec.lua:%d+: coroutine.yield%(%) outside a coroutine of your own suspends this task " ..
      "forever", task.describe(err))
    assert.matches("use task.sleep%(0%) to let other tasks run, or wait on a task.event%(%)", task.describe(err))
  end)

  it("leaves a coroutine of the task's own alone, and the task's own waits", function()
    local co = coroutine.wrap(function(a)
      local b = coroutine.yield(a + 1)
      return b * 2
    end)
    assert.are.equal(2, co(1))
    task.sleep(0)
    assert.are.equal(10, co(5))
  end)
end)
