# Builds the addon against an installed libshmledger found through
# pkg-config (PKG_CONFIG_PATH is honoured). The library's directory is
# recorded as an rpath, so the addon loads without LD_LIBRARY_PATH.
{
  "targets": [
    {
      "target_name": "shmledger",
      "sources": ["src/addon.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "cflags": ["<!@(pkg-config --cflags shmledger)", "-Wall", "-Wextra"],
      "cflags_cc": ["<!@(pkg-config --cflags shmledger)", "-std=c++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": [
        "<!@(pkg-config --libs shmledger)",
        "-Wl,-rpath,<!(pkg-config --variable=libdir shmledger)"
      ]
    }
  ]
}
