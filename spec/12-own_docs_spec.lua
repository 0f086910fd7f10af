-- The project's documents are its own: no reference to a document outside
-- the repository, the design lives in docs/design.md, and the public names
-- that once went undocumented are in the README.
local cli = require "helpers.cli"

local ROOT = cli.ROOT

-- every file under the given top-level paths, relative to ROOT
local function files(paths)
  local list = {}
  for _, p in ipairs(paths) do
    local h = assert(io.popen("cd " .. cli.q(ROOT) .. " && find " .. p .. " -type f"))
    for line in h:lines() do list[#list + 1] = line end
    h:close()
  end
  return list
end

describe("the project's own documents", function()
  it("name no document outside the repository", function()
    local checked = 0
    -- every tracked file when this is a git checkout, else the documents and the sources
    local h = io.popen("cd " .. cli.q(ROOT) .. " && env -u LD_PRELOAD git ls-files 2>&1")
    local list = {}
    for line in h:lines() do list[#list + 1] = line end
    h:close()
    if #list == 0 or not list[1]:match("^[%w._/-]+$") or not cli.slurp(ROOT .. "/" .. list[1]) then
      list = files { "README.md", "docs", "lua", "src" }
    end
    for _, f in ipairs(list) do
      local text = f ~= "spec/12-own_docs_spec.lua" and cli.slurp(ROOT .. "/" .. f)
      if text then
        text = text:lower()
        for _, bad in ipairs { "design sketch", "api-facts", "../shared" } do
          assert.is_nil(text:find(bad, 1, true), f .. " mentions " .. bad)
        end
        checked = checked + 1
      end
    end
    assert.is_true(checked > 20)
  end)

  it("have the design in docs/design.md, linked from the README", function()
    local design = assert(cli.slurp(ROOT .. "/docs/design.md"), "docs/design.md is missing")
    for _, heading in ipairs { "Layers", "Threading model", "Memory model", "error kinds and retries",
                               "The public contract" } do
      assert.is_truthy(design:find(heading, 1, true), heading)
    end
    assert.is_truthy(cli.slurp(ROOT .. "/README.md"):find("(docs/design.md)", 1, true))
  end)

  it("document the public names in the README", function()
    local readme = cli.slurp(ROOT .. "/README.md")
    for _, name in ipairs { "req:await()", "req.attempts", "req.model", "img.size", "err.response",
                            "nb.models[id]", "client:url(model, method)", "client.options",
                            "max_images", "aspect_ratios", "image_sizes", "pixels[size][ratio]" } do
      assert.is_truthy(readme:find("`" .. name, 1, true) or readme:find("\n" .. name, 1, true), name)
    end
  end)
end)
