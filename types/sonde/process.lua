---@meta sonde.process
-- LuaLS definitions of sonde.process (see README "Editors").

---An argv array and the options of a child process.
---@class sonde.SpawnSpec
---@field [integer] string the command and its arguments (no shell unless you spawn one)
---@field env table<string, string|number|false>? added to the environment; false removes a name
---@field cwd string? the folder it runs in
---@field stdin string? written to its stdin, which is then closed
---@field output_limit integer? bytes of stdout and of stderr kept, the last ones (default 1 MiB)
---@field fd3 boolean? the child's fd 3 is one more output pipe, whose bytes wait for their reader

---@class sonde.RunSpec: sonde.SpawnSpec
---@field timeout number? seconds to wait for it; then it is killed and run raises

---A child process. It leads its own process group, dies with the host, and
---is stopped when the test that started it ends.
---@class sonde.Process
---@field pid integer
---@field argv string[]
---@field code integer? its exit code, once it has exited normally
---@field signal string? the signal that ended it ("TERM", "KILL"...)
local Process = {}

---Waits for the child to exit: its exit code (nil when a signal ended it)
---and the signal's name. Raises a timeout error after `timeout` seconds.
---@param timeout number?
---@param real boolean? the timeout runs on real time even under a virtual clock
---@return integer? code, string? signal
function Process:wait(timeout, real) end

---Signals the child's process group.
---@param signal string|integer? default "TERM"
---@return boolean sent, string? why false when the child has already exited
function Process:kill(signal) end

---TERM, then KILL after `grace` seconds.
---@param grace number? default 10
---@param real boolean?
---@return integer? code, string? signal
function Process:stop(grace, real) end

---@return boolean
function Process:running() end

---What the child has written to stdout so far (the last output_limit bytes).
---@return string
function Process:stdout() end

---What the child has written to stderr so far (the last output_limit bytes).
---@return string
function Process:stderr() end

---Writes to the child's stdin.
---@param s string
function Process:write(s) end

function Process:close_stdin() end

---@alias sonde.process.Stream "stdout"|"stderr"|"fd3"

---The stream's next line without its newline, and the bytes lost before it
---(nil: none; a reader more than output_limit bytes behind loses the
---oldest); nil once the stream has ended and every line was read. Raises a
---timeout error when no whole line comes in time.
---@param timeout number?
---@param stream sonde.process.Stream? (default "stdout")
---@return string? line, integer? lost
function Process:read_line(timeout, stream) end

---`for line, lost in p:lines() do ... end`, reading as read_line does (the timeout is for each line).
---@param timeout number?
---@param stream sonde.process.Stream? (default "stdout")
---@return fun(): string?, integer?
function Process:lines(timeout, stream) end

---What line:match(pattern) returns for the first line of the stream that
---matches, from the first byte still kept. Raises when the stream ends
---first or the timeout passes, naming the pattern and the last lines.
---@param pattern string
---@param timeout number?
---@param stream sonde.process.Stream? (default "stdout")
---@return string ...
function Process:wait_output(pattern, timeout, stream) end

local process = {}

---Signal names and numbers, both ways: signals.TERM == 15, signals[15] == "TERM".
---@type table<string|integer, integer|string>
process.signals = {}

---Starts a child process.
---@param spec sonde.SpawnSpec
---@return sonde.Process
function process.spawn(spec) end

---Spawns, waits and returns the exit code, stdout, stderr and the signal
---that ended it.
---@param spec sonde.RunSpec
---@return integer? code, string stdout, string stderr, string? signal
function process.run(spec) end

---Returns once process pid has exited, whether or not this host started it
---(a daemon's pid, what a child left behind); at once when no such process
---exists. A zombie counts as exited. Raises a timeout error after `timeout`
---seconds.
---@param pid integer
---@param timeout number?
function process.wait_exit(pid, timeout) end

---The last n lines of text that are not empty.
---@param text string
---@param n integer
---@return string
function process.last_lines(text, n) end

return process
