// A small Lambda runtime for a Node.js handler, on the Lambda Runtime API the harness
// serves (AWS_LAMBDA_RUNTIME_API): node lambda_bridge.mjs FILE EXPORT
//
// It loads FILE (CommonJS or ES module) once, as a cold start does, then for each
// invocation hands EXPORT the event and a Lambda-like context, and posts back the
// result, or the error it threw or passed to its callback. console.* goes to stdout
// (the function's log stream) in the function's log format and level, as Lambda's
// Node.js runtime writes it.

import { request } from "node:http";
import { pathToFileURL } from "node:url";
import { format } from "node:util";

const [file, exportName] = process.argv.slice(2);
const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API ?? "").split(":");
const API = "/2018-06-01/runtime";

function call(method, path, body) {
  const payload = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    // A connection per call (agent: false): the Runtime API answers one request each.
    const sent = request(
      {
        host,
        port,
        path,
        method,
        agent: false,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) },
      },
      (answer) => {
        const chunks = [];
        answer.on("data", (chunk) => chunks.push(chunk));
        answer.on("end", () =>
          resolve({ status: answer.statusCode, headers: answer.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        answer.on("error", reject);
      },
    );
    sent.on("error", reject);
    sent.end(payload);
  });
}

// --- the function's log ------------------------------------------------------------

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const threshold = Math.max(0, LEVELS.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL ?? "INFO").toUpperCase()));
const asJson = (process.env.AWS_LAMBDA_LOG_FORMAT ?? "Text").toUpperCase() === "JSON";
let requestId;

function logger(level) {
  return (...args) => {
    if (LEVELS.indexOf(level) < threshold) return;
    const timestamp = new Date().toISOString();
    const message = format(...args);
    const line = asJson
      ? JSON.stringify({ timestamp, level, requestId, message })
      : `${timestamp}\t${requestId}\t${level}\t${message.replaceAll("\n", "\r")}`;
    process.stdout.write(`${line}\n`);
  };
}
console.trace = logger("TRACE");
console.debug = logger("DEBUG");
console.log = console.info = logger("INFO");
console.warn = logger("WARN");
console.error = logger("ERROR");

function errorBody(error) {
  const isError = error instanceof Error;
  return {
    errorType: isError ? error.name : typeof error,
    errorMessage: isError ? error.message : String(error),
    stackTrace: isError && error.stack ? error.stack.split("\n") : [],
  };
}

// --- the handler ---------------------------------------------------------------------

async function load() {
  const module = await import(pathToFileURL(file).href);
  const handler = module[exportName] ?? module.default?.[exportName];
  if (typeof handler !== "function") {
    throw new Error(`${file} exports no function named ${exportName}`);
  }
  return handler;
}

function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolve(result));
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    } catch (error) {
      reject(error);
    }
  });
}

function contextFor(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: name,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: "local",
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

let handler;
try {
  handler = await load();
} catch (error) {
  console.error("Init Error", error);
  await call("POST", `${API}/init/error`, errorBody(error));
  process.exit(1);
}
for (;;) {
  const next = await call("GET", `${API}/invocation/next`);
  if (next.status !== 200) process.exit(0); // the Runtime API is going away
  const context = contextFor(next.headers);
  requestId = context.awsRequestId;
  try {
    const result = await invoke(handler, JSON.parse(next.body), context);
    await call("POST", `${API}/invocation/${requestId}/response`, result ?? null);
  } catch (error) {
    console.error("Invoke Error", JSON.stringify(errorBody(error)));
    await call("POST", `${API}/invocation/${requestId}/error`, errorBody(error));
  }
  requestId = undefined;
}
