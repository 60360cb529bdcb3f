-- Output capture at the file descriptor: what a test writes to fd 1 and 2
-- by any means is kept for its result, io.stdout stays a real file, and the
-- reporters and sonde's own words still reach the terminal.
local support = require("specs.support")

local sonde, fixture = support.sonde, support.fixture

-- The lines of the "captured output:" block under the failure named `name`
-- in a human report, or nil.
local function captured(out, name)
  local from = out:find(") " .. name .. "\n", 1, true)
  if not from then return nil end
  local failure = out:sub(from):match("^(.-)\n\n") or out:sub(from) -- failures are apart by a blank line
  local block = failure:match("\n  captured output:\n(.*)$")
  if not block then return nil end
  local lines = {}
  for line in block:gmatch("[^\n]+") do lines[#lines + 1] = line:gsub("^    ", "") end
  return lines
end

local EVERY_WAY = { "print", "io.write", "io.stdout:write", "io.stderr:write", "os.execute", "io.popen stderr",
  "printf from C", "write(1)", "write(2)" }

describe("output capture", function()
  local code, out, err
  setup(function() code, out, err = sonde("test", fixture("runner/capture.lua")) end)

  it("keeps io.stdout and io.stderr real files (userdata) while a test runs", function()
    assert.are.equal(1, code)
    assert.not_matches("keeps io.stdout and io.stderr real files", out, 1, true)
    assert.matches("\n2 passed, 3 failed\n$", out)
  end)

  it("shows a failing test's output from Lua, C, the FFI and child processes, in the order written", function()
    assert.are.same(EVERY_WAY, captured(out, "capture fails after writing every way"))
  end)

  it("keeps a passing test's output, and its children's, off the terminal", function()
    assert.not_matches("quiet", out)
    assert.not_matches("quiet", err)
  end)

  it("shows what a failing setup's child wrote under the setup's error", function()
    assert.are.same({ "from the setup hook" }, captured(out, "a setup that fails (setup)"))
  end)

  it("lets what a describe body prints through to the terminal, in no test's output", function()
    assert.matches("^from the describe body\n", out)
    assert.are.equal(1, select(2, out:gsub("from the describe body", "")))
  end)

  it("keeps sonde's own words about a test on the terminal's stderr, not in the test's output", function()
    assert.matches("sonde: error in a done callback: specs/fixtures/runner/capture.lua:%d+: the callback raised", err)
    assert.are.same({ "the test's own line" }, captured(out, "capture fails after a done callback raised"))
  end)
end)

describe("output capture with --no-capture", function()
  it("lets every write through to the terminal", function()
    local code, out, err = sonde("test", "--no-capture", fixture("runner/capture.lua"))
    assert.are.equal(1, code)
    assert.matches("quiet print\n", out, 1, true)
    assert.matches("quiet child\n", out, 1, true)
    assert.matches("quiet write(2)\n", err, 1, true)
    assert.matches("io.stderr:write\n", err, 1, true)
    assert.not_matches("captured output:", out)
  end)
end)

describe("output capture in --jobs workers", function()
  it("keeps each test's output as a serial run does", function()
    local code, out, err = sonde("test", "--jobs", "2", fixture("runner/capture.lua"), fixture("runner/output.lua"))
    assert.are.equal(1, code)
    assert.are.same(EVERY_WAY, captured(out, "capture fails after writing every way"))
    assert.are.same({ "shown for the failure", "written 42", "to stdout" }, captured(out, "prints and fails"))
    assert.not_matches("quiet", out)
    assert.not_matches("quiet", err)
  end)
end)

-- Under ASan a SIGSEGV would be ASan's report: let the signal reach sonde
-- as it does without ASan.
local NO_ASAN_SEGV = { env = { ASAN_OPTIONS = "handle_segv=0"
  .. (os.getenv("ASAN_OPTIONS") and ":" .. os.getenv("ASAN_OPTIONS") or "") } }

describe("output capture in a protected serial run", function()
  it("shows what a test wrote before its process died", function()
    local code, out = sonde("test", fixture("runner/capture_crash.lua"), NO_ASAN_SEGV)
    assert.are.equal(1, code)
    assert.matches("killed by SIGSEGV", out)
    assert.are.same({ "io.stderr before the death", "write(1) before the death" }, captured(out, "dies after writing"))
    assert.not_matches("after the death", out)
    assert.matches("\n1 passed, 1 failed\n$", out)
  end)
end)

describe("output capture when a child opens /dev/stdout with O_TRUNC", function()
  it("loses what was written before, and neither the run nor later tests' output", function()
    local code, out = sonde("test", fixture("runner/capture_truncate.lua"))
    assert.are.equal(1, code)
    assert.matches("capture_truncate.lua:6: failed after the child\n", out)
    assert.is_nil(captured(out, "has a child empty its stdout and write nothing"))
    assert.are.same({ "from the child", "after the child" }, captured(out, "has a child empty its stderr and write"))
    assert.are.same({ "its own output" }, captured(out, "fails with its own output"))
    assert.matches("\n0 passed, 3 failed\n$", out)
  end)
end)

describe("the watchdog's last words about a test it cannot stop", function()
  it("reach the terminal's stderr, not the test's captured output", function()
    local code, out, err = sonde("test", "--timeout", "0.2", fixture("runner/stuck.lua"))
    assert.are.equal(1, code)
    assert.matches("is still running after its 0.2s timeout and cannot be interrupted", err, 1, true)
    assert.is_nil(captured(out, "is stuck in compiled code"))
  end)

  it("come after what the reporters had buffered, when the run stops there (no protection)", function()
    local code, out, err = sonde("test", "--timeout", "0.2", fixture("runner/stuck.lua"),
      { env = { SONDE_SUPERVISE = "off" } })
    assert.are.equal(1, code)
    assert.are.equal(".", out)
    assert.matches("stopping the run", err, 1, true)
  end)
end)

describe("an internal error while fd 2 is captured", function()
  it("reaches the terminal's stderr", function()
    local code, _, err = sonde("test", fixture("runner/capture_broken.lua"))
    assert.are.equal(2, code)
    assert.matches("sonde: internal error: specs/fixtures/runner/capture_broken.lua:5: the runner is broken", err, 1,
      true)
  end)
end)

describe("output capture's bound", function()
  it("keeps a test's first MiB and says how much more it wrote", function()
    local dir = support.temp_dir()
    local code = sonde("test", "-o", "junit=" .. dir .. "/r.xml", fixture("runner/capture_big.lua"))
    assert.are.equal(1, code)
    local kept = support.read_file(dir .. "/r.xml"):match("<system%-out>(.-)</system%-out>")
    assert.are.equal(string.rep("a", 1024 * 1024) .. "\n[output cut at 1 MiB: 2097152 more bytes]\n", kept)
  end)
end)

describe("sonde run", function()
  it("does not capture: a script's and its children's output go straight out", function()
    local code, out = sonde("run", "-",
        { stdin = 'print(io.type(io.stdout)) io.stdout:flush() os.execute("echo child")' })
    assert.are.equal(0, code)
    assert.are.equal("file\nchild\n", out)
  end)
end)
