// A small Lambda runtime for a Node.js handler, on the Lambda Runtime API the harness
// serves (AWS_LAMBDA_RUNTIME_API): node node_bridge.mjs FILE EXPORT
//
// It loads FILE (CommonJS or ES module) once, as a cold start does, then for each
// invocation hands EXPORT the event, a Lambda-like context and a callback, and posts
// back what the nodejs20.x and nodejs22.x runtimes would (see invoke below): a plain
// returned value is no result there. An error nothing caught fails the invocation and
// ends the process, as it ends a Lambda instance. console.* goes to stdout (the
// function's log stream) in the function's log format and level.
//
// As those runtimes do, it offers the handler the AWS SDK for JavaScript v3 after the
// handler's own node_modules: the clients package.json pins, @aws-sdk/client-s3,
// @aws-sdk/client-dynamodb, @aws-sdk/lib-dynamodb and @aws-sdk/s3-request-presigner at
// 3.1169.0 (Lambda carries a 3.x release of its own), with the @aws-sdk/* packages they
// use. Other @aws-sdk clients, which Lambda has, are not there; nor is anything else of
// the harness's node_modules, nor the SDK by any other way (no NODE_PATH).

import { existsSync, realpathSync } from "node:fs";
import { request } from "node:http";
import Module, { register } from "node:module";
import { join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
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

function jsonRecord(timestamp, level, args) {
  // As the Node.js runtime's JSON format: one value stays a value (an Error becomes its
  // fields); several are formatted into a string, with the first Error's fields beside.
  const record = { timestamp, level, requestId };
  if (args.length === 1) {
    record.message = args[0] instanceof Error ? errorFields(args[0]) : args[0];
    try {
      return JSON.stringify(record);
    } catch {
      record.message = format(args[0]);
      return JSON.stringify(record);
    }
  }
  record.message = format(...args);
  const error = args.find((arg) => arg instanceof Error);
  return JSON.stringify(error ? { ...record, ...errorFields(error) } : record);
}

function logger(level) {
  return (...args) => {
    if (LEVELS.indexOf(level) < threshold) return;
    const timestamp = new Date().toISOString();
    const line = asJson
      ? jsonRecord(timestamp, level, args)
      : `${timestamp}\t${requestId}\t${level}\t${format(...args).replaceAll("\n", "\r")}`;
    process.stdout.write(`${line}\n`);
  };
}
console.trace = logger("TRACE");
console.debug = logger("DEBUG");
console.log = console.info = logger("INFO");
console.warn = logger("WARN");
console.error = logger("ERROR");
console.fatal = logger("FATAL");

// An error as the runtime logs it: its class, message and stack.
function errorFields(error) {
  return {
    errorType: error.constructor?.name ?? "Error",
    errorMessage: error.message,
    stackTrace: typeof error.stack === "string" ? error.stack.split("\n") : [],
  };
}

// An error, or anything thrown, as the runtime posts it to the Runtime API.
function errorBody(error) {
  const isError = error instanceof Error;
  return {
    errorType: isError ? error.name : typeof error,
    errorMessage: isError ? error.message : String(error),
    trace: isError && typeof error.stack === "string" ? error.stack.split("\n") : [],
  };
}

// --- the AWS SDK the runtime provides -----------------------------------------------

// Lambda's Node.js runtimes let a handler find the SDK after its own node_modules. Here
// the runtime's SDK is the harness's node_modules, which also holds the harness's own
// tools and the SDK's dependencies: Node's walk up the folders would hand all of it to a
// handler that lives in this repository. So a bare name resolves by one rule: asked for
// by the SDK's own code, as Node resolves it; asked for by anyone else, to what Node
// finds outside the harness's node_modules (the handler's own packages come first), else
// to the runtime's copy if it is an @aws-sdk/* package, else to nothing. Node's two
// loaders each get the rule: require() resolves in the CommonJS one, import in the ESM
// one, whose hooks run on a thread of their own and so are handed over as source.
const modules = fileURLToPath(new URL("../../node_modules", import.meta.url));
const SDK = existsSync(modules) ? realpathSync(modules) : undefined;
const PROVIDED = "@aws-sdk/";

// A name Node looks up in node_modules folders (or in a package's "imports"): not a
// path or a URL, which names its module itself.
const bare = (specifier) => !/^[./]/.test(specifier) && !specifier.includes(":");

function offerToRequire() {
  const within = (path) => typeof path === "string" && path.startsWith(SDK + sep);
  // A module in the SDK's folder that looks nowhere else: what the runtime's copy is
  // resolved from.
  const runtime = new Module(join(SDK, "runtime.js"));
  runtime.filename = runtime.id;
  runtime.paths = [SDK];
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (specifier, parent, ...rest) {
    if (!bare(specifier) || within(parent?.filename)) {
      return resolveFilename.call(this, specifier, parent, ...rest);
    }
    let missing;
    try {
      const own = resolveFilename.call(this, specifier, parent, ...rest);
      if (!within(own)) return own;
    } catch (error) {
      if (error?.code !== "MODULE_NOT_FOUND") throw error;
      missing = error;
    }
    if (specifier.startsWith(PROVIDED)) {
      try {
        return resolveFilename.call(this, specifier, runtime, false);
      } catch {}
    }
    const error = new Error(`Cannot find module '${specifier}'`);
    throw missing ?? Object.assign(error, { code: "MODULE_NOT_FOUND" });
  };
}

const RESOLVE_IMPORTS = `
let sdk;
export function initialize(folder) {
  sdk = folder;
}
const within = (url) => typeof url === "string" && url.startsWith(sdk);
const bare = ${bare};
const found = (resolving) =>
  resolving.catch((error) => {
    if (error?.code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw error;
  });
export async function resolve(specifier, context, next) {
  if (!bare(specifier) || within(context.parentURL)) return next(specifier, context);
  const own = await found(next(specifier, context));
  if (own && !within(own.url)) return own;
  if (specifier.startsWith(${JSON.stringify(PROVIDED)})) {
    const provided = await found(next(specifier, { ...context, parentURL: sdk }));
    if (provided && within(provided.url)) return provided;
  }
  const error = new Error(\`Cannot find package '\${specifier}' imported from \${context.parentURL}\`);
  throw Object.assign(error, { code: "ERR_MODULE_NOT_FOUND" });
}
`;

if (SDK) {
  offerToRequire();
  register(`data:text/javascript,${encodeURIComponent(RESOLVE_IMPORTS)}`, {
    data: `${pathToFileURL(SDK).href}/`,
  });
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

// The answer of one invocation, as the Node.js runtime interface client (3.x, the
// nodejs20.x and nodejs22.x runtimes) gives it: a returned promise's value at once; the
// callback's once the event loop is empty (unless the handler sets
// context.callbackWaitsForEmptyEventLoop to false); null if the loop empties with
// neither; an error if it empties while a returned promise is still pending.
function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    let promised = false;
    let calledBack;
    const once = (settle) => (value) => {
      if (settled) return;
      settled = true;
      process.removeListener("beforeExit", drained);
      settle(value);
    };
    const succeed = once(resolve);
    const fail = once(reject);
    const drained = () => {
      if (calledBack) succeed(calledBack.result);
      else if (promised) fail(exitedEarly());
      else succeed(null);
    };
    process.on("beforeExit", drained);
    running = fail;
    const callback = (error, result) => {
      if (error) fail(error);
      else if (context.callbackWaitsForEmptyEventLoop) calledBack = { result };
      else succeed(result);
    };
    Object.assign(context, {
      succeed: (result) => callback(null, result),
      fail: (error) => callback(error ?? "handled"),
      done: callback,
    });
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        promised = true;
        returned.then(succeed, fail);
      }
    } catch (error) {
      fail(error);
    }
  });
}

function exitedEarly() {
  const error = new Error("Runtime exited without providing a reason");
  error.name = "Runtime.NodeJsExit";
  return error;
}

// Everything written so far, on its way to the log stream before the result is posted.
function flushed() {
  const written = (stream) => new Promise((done) => stream.write("", done));
  return Promise.all([written(process.stdout), written(process.stderr)]);
}

// An error no handler caught, in the handler's timers or promises: it fails what is
// running, and the process ends.
let running;
let crashing = false;
function uncaught(error) {
  console.error("Uncaught Error", error);
  crashing = true;
  if (running) running(error);
  else flushed().then(() => process.exit(1));
}
process.on("uncaughtException", uncaught);
process.on("unhandledRejection", uncaught);

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
    await flushed();
    await call("POST", `${API}/invocation/${requestId}/response`, result ?? null);
  } catch (error) {
    console.error(error instanceof Error ? error : new Error(String(error)));
    await flushed();
    await call("POST", `${API}/invocation/${requestId}/error`, errorBody(error));
  }
  running = undefined;
  requestId = undefined;
  if (crashing) process.exit(1);
}
