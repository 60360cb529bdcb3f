---@meta sonde.load
-- LuaLS definitions of sonde.load, what a `sonde load` script uses (see
-- README "Load tests" and "Editors"). A script also defines the globals
-- options, setup, teardown, default and the functions its scenarios exec.

---A custom metric (load.Trend, load.Counter, load.Rate, load.Gauge).
---@class sonde.load.Metric
---@field name string
local Metric = {}
---One sample, tagged with the VU's tags and these. A rate takes true/false
---or a number; the others a finite number.
---@param value number|boolean
---@param tags table<string, string>?
function Metric:add(value, tags) end

---The running VU.
---@class sonde.load.VU
---@field id integer
---@field iteration integer 0-based, in this VU
---@field scenario string

local load = {}

---True when every check passed. Each check is a function of value; a truthy
---result passes. Checks run in the order of their names; one that raises is
---an error of the iteration.
---@param value any
---@param checks table<string, fun(value: any): any>
---@param tags table<string, string>?
---@return boolean
function load.check(value, checks, tags) end

---Think time (task.sleep).
---@param seconds number
function load.sleep(seconds) end

---The running VU, or nil outside a load run.
---@return sonde.load.VU?
function load.vu() end

---A trend: min, max, avg, med and percentiles of its samples.
---@param name string
---@param is_time boolean? its samples are milliseconds
---@return sonde.load.Metric
function load.Trend(name, is_time) end

---A counter: the sum of its samples.
---@param name string
---@return sonde.load.Metric
function load.Counter(name) end

---A rate: the share of its samples that are true or non-zero.
---@param name string
---@return sonde.load.Metric
function load.Rate(name) end

---A gauge: its last sample.
---@param name string
---@return sonde.load.Metric
function load.Gauge(name) end

return load
