// GET /tasks/{task_id}/trace: a short-lived link to a task's trace, for the task's
// owner only (the "API handler" of the trace contract, its checks in its order).
//
// Another team's handler, as the harness's tests judge one: unbundled CommonJS that
// takes the AWS SDK for JavaScript v3 from Lambda's Node.js runtime. Where it differs
// from this project's handler, another team legitimately may: it reads TASKS_TABLE and
// TRACES_BUCKET, answers no checksum, logs its errors as JSON with message, error and
// error_name, and its role (policy.json) holds no s3:ListBucket, so on AWS a HEAD of a
// missing key is refused (403) and it answers 500.
"use strict";

const { randomUUID } = require("node:crypto");
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, GetCommand } = require("@aws-sdk/lib-dynamodb");
const { GetObjectCommand, HeadObjectCommand, S3Client } = require("@aws-sdk/client-s3");
const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");

const URL_TTL_SECONDS = 900;
const KEY_PREFIX = "traces/";
const S3_URI = /^s3:\/\/([^/]+)\/(.+)$/s;
const MISSING_OBJECT = new Set(["NotFound", "NoSuchKey"]);
const HEADERS = { "Content-Type": "application/json", "Access-Control-Allow-Origin": "*" };

// Made once per instance. The SDK reads the region, the credentials and the
// AWS_ENDPOINT_URL_* variables from the environment itself; path-style addressing, as
// an endpoint that is an address (no bucket subdomains) needs.
const s3 = new S3Client({ forcePathStyle: true });
const tasks = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const tableName = process.env.TASKS_TABLE;
const bucketName = process.env.TRACES_BUCKET;

// An answer given on purpose. `alarming` ones are for whoever runs the platform (the
// user is told only `message`); `detail` and `cause` say what happened, in the log.
class ApiError extends Error {
  constructor(status, code, message, { detail = code, cause, alarming = status >= 500 } = {}) {
    super(message, { cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.alarming = alarming;
  }
}

const internalError = (detail, cause) =>
  new ApiError(500, "INTERNAL_ERROR", "Internal server error.", { detail, cause });
const traceNotAvailable = () =>
  new ApiError(404, "TRACE_NOT_AVAILABLE", "No trace is available for this task.");

exports.handler = async (event) => {
  const requestId = field(event, "requestContext", "requestId") || randomUUID();
  const taskId = field(event, "pathParameters", "task_id");
  try {
    return respond(200, { data: await presignForOwner(event, taskId) }, requestId);
  } catch (caught) {
    const error = caught instanceof ApiError ? caught : internalError("unexpected error", caught);
    const record = { task_id: taskId ?? null, request_id: requestId, status: error.status };
    if (error.alarming) {
      const cause = error.cause;
      console.error(
        JSON.stringify({
          message: "trace url failed",
          error: cause ? `${error.detail}: ${cause.message}` : error.detail,
          error_name: cause?.name ?? error.code,
          ...record,
        }),
      );
    } else {
      console.info(JSON.stringify({ message: "trace url refused", code: error.code, ...record }));
    }
    const body = { error: { code: error.code, message: error.message, request_id: requestId } };
    return respond(error.status, body, requestId);
  }
};

async function presignForOwner(event, taskId) {
  const caller = field(event, "requestContext", "authorizer", "claims", "sub");
  if (!caller) throw new ApiError(401, "UNAUTHORIZED", "Missing or invalid caller identity.");
  if (!taskId) throw new ApiError(400, "VALIDATION_ERROR", "Missing task_id path parameter.");
  if (!tableName || !bucketName) throw internalError("TASKS_TABLE or TRACES_BUCKET is not set");

  const { Item: task } = await tasks.send(
    new GetCommand({ TableName: tableName, Key: { task_id: taskId }, ConsistentRead: true }),
  );
  if (!task) throw new ApiError(404, "TASK_NOT_FOUND", `Task ${taskId} not found.`);
  if (task.user_id !== caller) {
    throw new ApiError(403, "FORBIDDEN", "You do not have access to this task.");
  }
  const uri = task.trace_s3_uri;
  if (uri === undefined || uri === "") throw traceNotAvailable();
  if (typeof uri !== "string") throw internalError("trace_s3_uri is not a string");

  const parts = S3_URI.exec(uri);
  if (!parts) throw internalError("trace_s3_uri is not s3://<bucket>/<key>");
  const [, bucket, key] = parts;
  // Never sign an object of a bucket this API does not own.
  if (bucket !== bucketName) throw internalError("trace_s3_uri names another bucket");
  if (!keyBelongsTo(key, caller)) {
    // A tampered record or a cross-user write, never the user's mistake.
    throw new ApiError(403, "FORBIDDEN", "You do not have access to this trace.", {
      detail: "trace key outside the caller's prefix",
      alarming: true,
    });
  }

  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if (MISSING_OBJECT.has(error?.name) || error?.$metadata?.httpStatusCode === 404) {
      throw traceNotAvailable();
    }
    throw internalError("HEAD of the trace failed", error);
  }

  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), {
    expiresIn: URL_TTL_SECONDS,
  });
  const expiresAt = new Date(Date.now() + URL_TTL_SECONDS * 1000);
  return { url, expires_at: expiresAt.toISOString().replace(/\.\d{3}Z$/, "Z") };
}

// Only a plain key under the caller's own prefix: HTTP clients may normalise "." and
// ".." and empty segments, so a key that has any is refused, not reasoned about.
function keyBelongsTo(key, caller) {
  if (caller.includes("/") || !key.startsWith(`${KEY_PREFIX}${caller}/`)) return false;
  return key.split("/").every((segment) => !["", ".", ".."].includes(segment));
}

// A non-empty string at `path` in `value`, or undefined wherever the event has another shape.
function field(value, ...path) {
  for (const name of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[name];
  }
  return typeof value === "string" && value !== "" ? value : undefined;
}

function respond(status, body, requestId) {
  return {
    statusCode: status,
    headers: { ...HEADERS, "X-Request-Id": requestId },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}
