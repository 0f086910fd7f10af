-- nanobanana: Gemini-native image generation for Lua (C core on libcurl).
-- The version here must equal NB_VERSION in src/core/version.h (checked by
-- spec/00-build_spec.lua).
package = "nanobanana"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/nanobanana.git",
  tag = "v0.1.0",
}
description = {
  summary = "Generate and edit images with Gemini (Nano Banana) from Lua",
  detailed = [[
    A Lua client for the Gemini-native generateContent image models
    (gemini-2.5-flash-image, gemini-3-pro-image-preview,
    gemini-3.1-flash-image-preview), against Google or a gateway. Its C core
    streams and decodes image payloads as they arrive, runs many requests at
    once on one libcurl multi handle, and never blocks a game loop.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5", -- 5.4 first; 5.3, 5.1 and LuaJIT 2.1 are tested too
  "lua-cjson >= 2.1.0",
}
external_dependencies = {
  CURL = { header = "curl/curl.h" },
}
build = {
  type = "builtin",
  modules = {
    ["nanobanana.core"] = {
      sources = {
        "src/lua_nanobanana.c",
        "src/core/b64.c", "src/core/scan.c", "src/core/sniff.c",
        "src/core/sse.c", "src/core/transport.c", "src/core/fsutil.c",
      },
      incdirs = { "src", "src/core", "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      libraries = { "curl", "pthread", "dl" },
    },
    ["nanobanana"] = "lua/nanobanana/init.lua",
    ["nanobanana.chat"] = "lua/nanobanana/chat.lua",
    ["nanobanana.cli"] = "lua/nanobanana/cli.lua",
    ["nanobanana.client"] = "lua/nanobanana/client.lua",
    ["nanobanana.engine"] = "lua/nanobanana/engine.lua",
    ["nanobanana.errors"] = "lua/nanobanana/errors.lua",
    ["nanobanana.image"] = "lua/nanobanana/image.lua",
    ["nanobanana.json"] = "lua/nanobanana/json.lua",
    ["nanobanana.loop"] = "lua/nanobanana/loop.lua",
    ["nanobanana.many"] = "lua/nanobanana/many.lua",
    ["nanobanana.models"] = "lua/nanobanana/models.lua",
    ["nanobanana.options"] = "lua/nanobanana/options.lua",
    ["nanobanana.request"] = "lua/nanobanana/request.lua",
    ["nanobanana.result"] = "lua/nanobanana/result.lua",
    ["nanobanana.stream"] = "lua/nanobanana/stream.lua",
    ["nanobanana.wire"] = "lua/nanobanana/wire.lua",
  },
  install = {
    bin = { nanobanana = "bin/nanobanana" },
  },
}
