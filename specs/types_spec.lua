-- types/sonde/*.lua (LuaLS definitions, installed for editors) and
-- docs/api.md (generated from them) against what each public module exports.
-- Names starting with "_" are the runner's hooks, not part of the API.
local api = require("scripts.api_docs")
local support = require("specs.support")

local read = support.read_file

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

describe("the LuaLS definitions and docs/api.md", function()
  for _, name in ipairs(api.MODULES) do
    it("define and document every export of sonde." .. name .. ", and nothing else", function()
      local mod = require("sonde." .. name)
      local exported_fns, exported_values = {}, {}
      for k, v in pairs(mod) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" then
          if type(v) == "function" then exported_fns[k] = true else exported_values[k] = true end
        end
      end
      local text = read("types/sonde/" .. name .. ".lua")
      assert.matches("^%-%-%-@meta sonde%." .. name .. "\n", text)
      local meta = api.parse(text)
      local defined_fns, defined_values = {}, {}
      for _, fn in ipairs(meta.functions) do
        assert.are.equal(name, fn.owner, "a definition of another table: " .. fn.owner .. "." .. fn.name)
        defined_fns[fn.name] = true
      end
      for _, v in ipairs(meta.values) do defined_values[v.name] = true end
      local missing, extra = {}, {}
      for k in pairs(exported_fns) do if not defined_fns[k] then missing[#missing + 1] = name .. "." .. k end end
      for k in pairs(exported_values) do if not defined_values[k] then missing[#missing + 1] = name .. "." .. k end end
      for k in pairs(defined_fns) do if not exported_fns[k] then extra[#extra + 1] = name .. "." .. k .. "()" end end
      for k in pairs(defined_values) do if not exported_values[k] then extra[#extra + 1] = name .. "." .. k end end
      table.sort(missing)
      table.sort(extra)
      assert.are.same({}, missing, "exported but not in types/sonde/" .. name .. ".lua")
      assert.are.same({}, extra, "in types/sonde/" .. name .. ".lua but not exported")

      -- docs/api.md: one heading per function, none for what is not exported
      local docs = read("docs/api.md")
      local section = docs:match("\n## sonde%." .. name .. "\n(.-)\n## ") or docs:match("\n## sonde%." .. name
          .. "\n(.*)$")
      assert.is_string(section, "docs/api.md has no section sonde." .. name)
      local documented = {}
      for fn in section:gmatch("\n#+ `" .. name .. "%.([%w_]+)%(") do documented[fn] = true end
      assert.are.same(sorted(exported_fns), sorted(documented))
    end)
  end

  it("have methods that the objects have", function()
    local task, http, server = require("sonde.task"), require("sonde.http"), require("sonde.server")
    local events, livecheck, process = require("sonde.events"), require("sonde.livecheck"), require("sonde.process")
    local p = process.spawn { "true" }
    local objects = { ["sonde.Task"] = task.spawn(function() end), ["sonde.Event"] = task.event(),
      ["sonde.Future"] = task.future(), ["sonde.Channel"] = task.channel(), ["sonde.Process"] = p,
      ["sonde.http.Client"] = http.client(), ["sonde.server.Server"] = server.new(),
      ["sonde.events.Client"] = events.client(), ["sonde.livecheck.App"] = livecheck.app { port = 0 } }
    objects["sonde.livecheck.Case"] = objects["sonde.livecheck.App"]:case { name = "c" }
    local redis = require("sonde.redis") -- its classes hold the methods (no server needed)
    objects["sonde.redis.Client"], objects["sonde.redis.Pipeline"] = redis.Client, redis.Pipeline
    objects["sonde.load.Metric"] = require("sonde.load").Counter("types_spec_probe")
    p:wait(10)
    local checked = 0
    for _, name in ipairs(api.MODULES) do
      for _, class in ipairs(api.parse(read("types/sonde/" .. name .. ".lua")).classes) do
        local object = objects[class.name]
        for _, m in ipairs(class.methods) do
          if object then
            assert.is_function(object[m.name], class.name .. " has no method " .. m.name)
            checked = checked + 1
          end
        end
      end
    end
    assert.is_true(checked > 60, "only " .. checked .. " methods checked")
  end)

  it("are what docs/api.md says (sonde run scripts/api_docs.lua makes it)", function()
    assert.are.equal(api.markdown("types"), read("docs/api.md"))
  end)
end)
