/* SPDX-License-Identifier: MIT */
/* luaopen.c: `require "fedmesh"` from stock lua5.4 loads this shim. */
#include <lua.h>

#include "fedmesh/fedmesh.h"

int fm_lua_open(lua_State *L);
FM_API int luaopen_fedmesh(lua_State *L);

FM_API int
luaopen_fedmesh(lua_State *L)
{
	return fm_lua_open(L);
}
