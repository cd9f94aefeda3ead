"""Drives `pgbranchdiff mcp` as an agent would, with the Python MCP SDK (mcp 2.x).

Usage: mcp_agent.py PLAN_JSON SERVER_COMMAND...
PLAN_JSON is a list of {"tool", "args", "as"}: each step calls a tool; "as" saves
the branch name a result returns, and "$NAME" in later arguments stands for it.
Every tool's input and output schema is checked to be a valid JSON Schema, and
every structured result is validated against its tool's output schema. Prints
{"tools": {name: {input, output}}, "calls": [{tool, error, result, text}]}.
"""

import asyncio
import json
import os
import sys

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def substitute(value, names):
    if isinstance(value, str) and value.startswith("$"):
        return names[value[1:]]
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


async def main(plan, command):
    server = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    out, names = {"tools": {}, "calls": []}, {}
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for tool in (await session.list_tools()).tools:
            jsonschema.Draft202012Validator.check_schema(tool.input_schema)
            if tool.output_schema is not None:
                jsonschema.Draft202012Validator.check_schema(tool.output_schema)
            out["tools"][tool.name] = {"input": tool.input_schema, "output": tool.output_schema}
        for step in plan:
            result = await session.call_tool(step["tool"], substitute(step.get("args", {}), names))
            structured = result.structured_content
            schema = out["tools"].get(step["tool"], {}).get("output")
            if structured is not None and not result.is_error and schema:
                jsonschema.validate(structured, schema)
            if step.get("as") and structured and not result.is_error:
                names[step["as"]] = structured["name"]
            text = "".join(c.text for c in result.content if c.type == "text")
            out["calls"].append({"tool": step["tool"], "error": bool(result.is_error), "result": structured, "text": text})
    print(json.dumps(out))


asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2:]))
