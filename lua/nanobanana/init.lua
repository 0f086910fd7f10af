--- nanobanana: Gemini-native image generation and editing for Lua.
-- See README.md for the whole contract. Runtime failures return nil, err
-- (err: see nanobanana.errors); programming errors raise.
local core = require "nanobanana.core"
local client = require "nanobanana.client"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local models = require "nanobanana.models"

local nb = {}

nb._VERSION = "nanobanana " .. core.version
nb.models = models

--- { version=, curl=, ssl=, libz=, http2=, gzip=, lua= }
function nb.version_info()
  local v = core.version_info()
  v.lua = _VERSION
  return v
end

--- A client; every option is optional (see README "Options").
function nb.new(opts)
  local c = client.new(opts, 2) -- not a tail call (error levels)
  return c
end

local default_client
--- One call on a default client built from the environment.
function nb.generate(prompt, opts)
  default_client = default_client or client.new(nil, 2)
  return default_client:_start(prompt, opts, 2):_run()
end

--- An image blob from a path, {path=}, or {data=, mimeType=}.
function nb.image(spec)
  local img, err = image.new(spec, 2) -- not a tail call (error levels)
  return img, err
end

nb.is_error = errors.is_error
nb.await = client.await

return nb
