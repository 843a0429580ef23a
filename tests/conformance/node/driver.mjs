// One official Node.js client, unchanged, pointed at a Keyplane server and driven by the pytest
// suite line by line: each stdin line is {"action": "...", "params": {...}} with the wire's
// parameter names; each stdout line is {"ok": <response>} or {"error": {"code", "message",
// "status"}}.
//
// Environment:
//   KP_CLIENT     cvm (tencentcloud-sdk-nodejs-cvm), lighthouse (tencentcloud-sdk-nodejs-common's
//                 CommonClient for Lighthouse 2020-03-24) or ecs (@alicloud/ecs20140526)
//   KP_ENDPOINT   the bare host:port, as a user types it
//   KP_PROTOCOL   http or https (for https, NODE_EXTRA_CA_CERTS names the server's CA)
//   KP_KEY_ID, KP_KEY_SECRET   the account's SecretId/SecretKey or AccessKeyId/AccessKeySecret
//   KP_REGION     the region
import readline from "node:readline";
import * as tencentCvm from "tencentcloud-sdk-nodejs-cvm";
import { CommonClient } from "tencentcloud-sdk-nodejs-common";
import * as ecsModule from "@alicloud/ecs20140526";
import * as openApi from "@alicloud/openapi-client";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

function tencentOptions() {
  return {
    credential: { secretId: env("KP_KEY_ID"), secretKey: env("KP_KEY_SECRET") },
    region: env("KP_REGION"),
    profile: {
      language: "en-US",
      httpProfile: { endpoint: env("KP_ENDPOINT"), protocol: `${env("KP_PROTOCOL")}://`, reqTimeout: 60 },
    },
  };
}

/** A function (action, params) -> response for the chosen client. */
function makeCaller() {
  switch (env("KP_CLIENT")) {
    case "cvm": {
      const client = new tencentCvm.cvm.v20170312.Client(tencentOptions());
      return (action, params) => client[action](params);
    }
    case "lighthouse": {
      const client = new CommonClient("lighthouse.tencentcloudapi.com", "2020-03-24", tencentOptions());
      return (action, params) => client.request(action, params);
    }
    case "ecs": {
      const Client = ecsModule.default.default;
      const client = new Client(new openApi.Config({
        accessKeyId: env("KP_KEY_ID"),
        accessKeySecret: env("KP_KEY_SECRET"),
        endpoint: env("KP_ENDPOINT"),
        protocol: env("KP_PROTOCOL"),
        regionId: env("KP_REGION"),
      }));
      return async (action, params) => {
        // The SDK's own models: DescribeKeyPairsRequest({regionId, ...}), client.describeKeyPairs.
        const camel = Object.fromEntries(
          Object.entries(params).map(([k, v]) => [k[0].toLowerCase() + k.slice(1), v]),
        );
        const Request = ecsModule[`${action}Request`];
        const method = action[0].toLowerCase() + action.slice(1);
        const response = await client[method](new Request(camel));
        return response.body.toMap();
      };
    }
    default:
      throw new Error(`unknown KP_CLIENT ${process.env.KP_CLIENT}`);
  }
}

const call = makeCaller();
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { action, params } = JSON.parse(line);
  let answer;
  try {
    answer = { ok: await call(action, params || {}) };
  } catch (e) {
    answer = {
      error: {
        code: e.code ?? null,
        message: String(e.message ?? e),
        status: e.statusCode ?? null,
        requestId: e.requestId ?? e.data?.RequestId ?? null,
      },
    };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
