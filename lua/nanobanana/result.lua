--- Turns a finished transfer into a result or an error object.
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"

local M = {}

M.POLICY = {
  SAFETY = true, IMAGE_SAFETY = true, PROHIBITED_CONTENT = true, IMAGE_PROHIBITED_CONTENT = true,
  BLOCKLIST = true, SPII = true, RECITATION = true, IMAGE_RECITATION = true,
}

M.RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

local PLACEHOLDER = "^nb:blob:(%d+)$"

-- cjson gives floats for every number; make integral ones integers again
local function normalize(v, depth)
  if depth > 64 then return v end
  local tv = type(v)
  if tv == "number" then
    if math.type and math.type(v) == "float" and v == math.floor(v) and v >= -2^53 and v <= 2^53 then
      return math.tointeger(v)
    end
    return v
  end
  if tv == "table" then
    for k, x in pairs(v) do
      local tx = type(x)
      if tx == "number" or tx == "table" then v[k] = normalize(x, depth + 1) end
    end
  end
  return v
end

local function parse_duration(s)
  if type(s) ~= "string" then return nil end
  local n = s:match("^%s*([%d%.]+)s%s*$")
  return n and tonumber(n)
end

--- Server-requested delay: google.rpc.RetryInfo, else a Retry-After header.
local function server_delay(details, headers)
  if type(details) == "table" then
    for _, d in ipairs(details) do
      if type(d) == "table" and type(d["@type"]) == "string" and d["@type"]:find("RetryInfo", 1, true) then
        local v = parse_duration(d.retryDelay)
        if v then return v end
      end
    end
  end
  if headers then
    local ra = headers:lower():match("\nretry%-after:%s*([%d%.]+)%s*\r?\n")
    if ra then return tonumber(ra) end
  end
end
M.server_delay = server_delay

local function google_error(decoded)
  if type(decoded) ~= "table" then return nil end
  if type(decoded.error) == "table" then return decoded.error end
  if type(decoded[1]) == "table" and type(decoded[1].error) == "table" then return decoded[1].error end
end

local function api_error(ge, status, headers, secrets)
  local code = ge.status
  local num = math.tointeger(ge.code) or ge.code
  return errors.new("api", {
    status = (status >= 200 and status < 300 and type(num) == "number") and num or status,
    code = type(code) == "string" and code or nil,
    message = type(ge.message) == "string" and ge.message or "error without a message",
    details = ge.details,
    retry_after = server_delay(ge.details, headers),
  }, secrets)
end

--- Error for a non-2xx answer.
function M.http_error(status, body, headers, secrets)
  local decoded = json.decode(body)
  local ge = google_error(decoded)
  if ge then
    normalize(ge, 0)
    return api_error(ge, status, headers, secrets)
  end
  local excerpt = body:gsub("<[^>]*>", " "):gsub("%s+", " "):gsub("^ ", ""):sub(1, 200)
  return errors.new("http", {
    status = status,
    message = "HTTP " .. status .. (excerpt ~= "" and (": " .. excerpt) or " with an empty body"),
    retry_after = server_delay(nil, headers),
  }, secrets)
end

local function is_image_mime(m) return type(m) == "string" and m:sub(1, 6) == "image/" end

--- Result of a 2xx transfer. take_blob(i) returns bytes or a path (and
-- "data"/"file") for blob i (1-based). Returns res or nil, err.
function M.build(skeleton, take_blob, status, headers, secrets)
  local decoded, derr = json.decode(skeleton)
  if decoded == nil then
    return nil, errors.new("invalid_response", { message = "response is not JSON: " .. tostring(derr), status = status }, secrets)
  end
  normalize(decoded, 0)
  local ge = google_error(decoded)
  if ge then return nil, api_error(ge, status, headers, secrets) end
  if type(decoded) ~= "table" or (decoded.candidates == nil and decoded.promptFeedback == nil) then
    return nil, errors.new("invalid_response", {
      message = "response has neither candidates nor promptFeedback", status = status }, secrets)
  end

  local res = {
    images = {}, thoughts = {}, raw = decoded,
    usageMetadata = decoded.usageMetadata, modelVersion = decoded.modelVersion,
    responseId = decoded.responseId, promptFeedback = decoded.promptFeedback,
  }
  local cand = type(decoded.candidates) == "table" and decoded.candidates[1] or nil
  local texts = {}
  if type(cand) == "table" then
    res.finishReason = cand.finishReason
    res.finishMessage = cand.finishMessage
    res.content = cand.content
    local parts = type(cand.content) == "table" and cand.content.parts
    if type(parts) == "table" then
      for _, part in ipairs(parts) do
        if type(part) == "table" then
          local key = part.inlineData and "inlineData" or (part.inline_data and "inline_data")
          local thought = part.thought == true
          local sig = part.thoughtSignature or part.thought_signature
          if key then
            local blob = part[key]
            local idx = type(blob) == "table" and type(blob.data) == "string" and blob.data:match(PLACEHOLDER)
            if idx then
              local declared = blob.mimeType or blob.mime_type
              local v, how = take_blob(tonumber(idx) + 1)
              local img
              if how == "file" then img = image.from_file(v, declared)
              else img = image.from_bytes(v, nil, declared) end
              if not img then
                return nil, errors.new("io", { message = "cannot read the received image back" }, secrets)
              end
              img.mimeType = img.mimeType or declared
              img.declaredMimeType = declared
              img.thoughtSignature = sig
              img.thought = thought or nil
              blob.data = img -- res.content / raw carry the image itself
              if thought then res.thoughts[#res.thoughts + 1] = img
              elseif is_image_mime(img.mimeType) then res.images[#res.images + 1] = img end
            end
          elseif type(part.text) == "string" then
            if thought then res.thoughts[#res.thoughts + 1] = { text = part.text, thoughtSignature = sig }
            else texts[#texts + 1] = part.text end
          end
        end
      end
    end
  end
  if #texts > 0 then res.text = table.concat(texts) end
  if #res.images > 0 then return res end

  local pf = type(decoded.promptFeedback) == "table" and decoded.promptFeedback or nil
  local fields = {
    status = status, finishReason = res.finishReason, finishMessage = res.finishMessage,
    blockReason = pf and pf.blockReason, text = res.text, response = res,
  }
  if fields.blockReason then
    fields.message = "the prompt was blocked (" .. tostring(fields.blockReason) .. ")"
    return nil, errors.new("blocked", fields, secrets)
  end
  if M.POLICY[res.finishReason] then
    fields.message = "the output was blocked (" .. tostring(res.finishReason) .. ")"
      .. (res.finishMessage and (": " .. res.finishMessage) or "")
    return nil, errors.new("blocked", fields, secrets)
  end
  fields.message = "the model returned no image (finishReason " .. tostring(res.finishReason) .. ")"
    .. (res.text and (": " .. res.text:sub(1, 200)) or "")
  return nil, errors.new("no_image", fields, secrets)
end

return M
