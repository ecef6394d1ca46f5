/**
 * What every generated TypeScript client is driven through: one flow against a
 * live server, and every response body checked against the schema that the
 * served document declares for its status.
 *
 * Each src/<client>.ts adapts its generated client to `FlowClient` and calls
 * `run`. tests/sdk/test_generated_clients.py generates the clients, compiles
 * them with this directory (tsconfig.json: strict, exactOptionalPropertyTypes)
 * and runs each against gunicorn, with FLOW_CONFIG in the environment.
 */
import assert from "node:assert/strict";

import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

// --- what the flow sees of a client ------------------------------------------------

export interface ApiErrorView {
  error: string;
  message: string;
  details?: { field: string; message: string }[] | undefined;
}

/** A documented answer: the parsed body of a success, or the ApiError envelope. */
export type Reply<T> = { status: number; data: T } | { status: number; error: ApiErrorView };

export interface GroupView {
  id: string;
  name: string;
  member_count: number;
}

export interface InviteView {
  id: string;
  group_id: string;
  code: string;
  preset_role: string;
  max_uses: number;
  current_uses: number;
  expires_in_hours: number;
}

export interface InviteSummaryView {
  id: string;
  current_uses: number;
  created_by: { id: string; display_name: string | null };
}

export interface PreviewView {
  group_name: string;
  member_count: number;
  is_valid: boolean;
  status: string;
}

export interface JoinView {
  group_id: string;
  member_count: number;
  role: string;
}

export interface RedemptionView {
  user_id: string;
  display_name: string | null;
  role: string;
}

/** One method per operation of the flow; a token is the caller's bearer token. */
export interface FlowClient {
  createGroup(token: string, name: string): Promise<Reply<GroupView>>;
  getGroup(token: string, groupId: string): Promise<Reply<GroupView>>;
  /** The body has `max_uses` only: the other fields take the server's defaults. */
  createInvite(token: string, groupId: string, maxUses: number): Promise<Reply<InviteView>>;
  listInvites(token: string, groupId: string): Promise<Reply<InviteSummaryView[]>>;
  getInviteStatus(token: string, groupId: string, inviteId: string): Promise<Reply<string>>;
  revokeInvite(token: string, groupId: string, inviteId: string): Promise<Reply<null>>;
  listRedemptions(
    token: string,
    groupId: string,
    inviteId: string,
  ): Promise<Reply<RedemptionView[]>>;
  previewInvite(code: string): Promise<Reply<PreviewView>>;
  joinGroup(token: string, code: string): Promise<Reply<JoinView>>;
}

/** The hours between an invite's creation and expiry, from the two RFC 3339 times. */
export function hoursBetween(createdAt: string | Date, expiresAt: string | Date): number {
  return Math.round((new Date(expiresAt).getTime() - new Date(createdAt).getTime()) / 3_600_000);
}

// --- the flow ----------------------------------------------------------------------

interface User {
  id: string;
  token: string;
}

interface FlowConfig {
  base_url: string;
  users: { owner: User; joiner: User; second: User; outsider: User };
}

function ok<T>(reply: Reply<T>, status: number): T {
  if ("error" in reply) {
    assert.fail(`expected ${status}, got ${reply.status}: ${JSON.stringify(reply.error)}`);
  }
  assert.equal(reply.status, status);
  return reply.data;
}

function failed<T>(reply: Reply<T>, status: number, code: string): ApiErrorView {
  if (!("error" in reply)) {
    assert.fail(`expected ${status} ${code}, got ${reply.status}: ${JSON.stringify(reply.data)}`);
  }
  assert.equal(reply.status, status);
  assert.equal(reply.error.error, code);
  assert.ok(reply.error.message);
  return reply.error;
}

export async function runFlow(api: FlowClient, users: FlowConfig["users"]): Promise<void> {
  const { owner, joiner, second, outsider } = users;
  const group = ok(await api.createGroup(owner.token, "SDK Family"), 201);
  assert.equal(group.member_count, 1);

  const invite = ok(await api.createInvite(owner.token, group.id, 2), 201);
  assert.deepEqual(
    [invite.group_id, invite.max_uses, invite.current_uses, invite.preset_role],
    [group.id, 2, 0, "member"],
  );
  assert.equal(invite.expires_in_hours, 24); // the default
  assert.match(invite.code, /^[A-Z2-9]{3}-[A-Z2-9]{3}-[A-Z2-9]{3}$/);

  const listed = ok(await api.listInvites(owner.token, group.id), 200);
  assert.deepEqual(
    listed.map((i) => [i.id, i.current_uses, i.created_by.id, i.created_by.display_name]),
    [[invite.id, 0, owner.id, "Olivia Owner"]],
  );
  assert.equal(ok(await api.getInviteStatus(owner.token, group.id, invite.id), 200), "active");

  // The preview needs no token, and takes the code as a person types it.
  const preview = ok(await api.previewInvite(invite.code.toLowerCase().replaceAll("-", " ")), 200);
  assert.deepEqual(preview, {
    group_name: "SDK Family",
    member_count: 1,
    is_valid: true,
    status: "active",
  });

  const joined = ok(await api.joinGroup(joiner.token, invite.code), 200);
  assert.deepEqual(joined, { group_id: group.id, member_count: 2, role: "member" });
  const redemptions = ok(await api.listRedemptions(owner.token, group.id, invite.id), 200);
  assert.deepEqual(redemptions, [
    { user_id: joiner.id, display_name: "Jules Joiner", role: "member" },
  ]);

  // 400, 403, 404, 409 and 410, each the ApiError envelope with its code.
  const invalid = failed(await api.createInvite(owner.token, group.id, 0), 400, "validation_error");
  assert.deepEqual(
    invalid.details?.map((d) => d.field),
    ["max_uses"],
  );
  failed(await api.previewInvite("ABO-234-XYZ"), 400, "invalid_code");
  failed(await api.createInvite(joiner.token, group.id, 1), 403, "forbidden");
  failed(await api.getGroup(outsider.token, group.id), 404, "group_not_found");
  failed(await api.previewInvite("ZZZ-ZZZ-ZZZ"), 404, "invite_not_found");
  failed(await api.joinGroup(joiner.token, invite.code), 409, "already_member");
  ok(await api.joinGroup(second.token, invite.code), 200); // the last use
  // Their token's name is 150 characters; the service keeps 100 (the document's maxLength).
  const both = ok(await api.listRedemptions(owner.token, group.id, invite.id), 200);
  assert.deepEqual(
    both.map((r) => [r.user_id, r.display_name?.length]),
    [
      [joiner.id, 12],
      [second.id, 100],
    ],
  );
  failed(await api.joinGroup(outsider.token, invite.code), 410, "invite_exhausted");
  assert.equal(ok(await api.getInviteStatus(owner.token, group.id, invite.id), 200), "exhausted");

  // Revoking takes an active invite off the list; again is a no-op.
  const active = ok(await api.createInvite(owner.token, group.id, 5), 201);
  assert.deepEqual(
    ok(await api.listInvites(owner.token, group.id), 200).map((i) => i.id),
    [active.id],
  );
  assert.equal(ok(await api.revokeInvite(owner.token, group.id, active.id), 204), null);
  assert.equal(ok(await api.revokeInvite(owner.token, group.id, active.id), 204), null);
  assert.equal(ok(await api.getInviteStatus(owner.token, group.id, active.id), 200), "revoked");
  assert.deepEqual(ok(await api.listInvites(owner.token, group.id), 200), []);
  failed(await api.previewInvite(active.code), 404, "invite_not_found");
  assert.equal(ok(await api.getGroup(owner.token, group.id), 200).member_count, 3);
}

// --- every response against the served document -----------------------------------

interface Exchange {
  method: string;
  url: URL;
  status: number;
  contentType: string;
  text: string;
}

/** A fetch for the generated clients that keeps a copy of every exchange. */
export class Recorder {
  readonly exchanges: Exchange[] = [];

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const response = await globalThis.fetch(request);
    this.exchanges.push({
      method: request.method.toLowerCase(),
      url: new URL(request.url),
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      text: await response.clone().text(),
    });
    return response;
  };
}

interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
}

const METHODS = new Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"]);
// The document's component schemas, registered with Ajv under this id.
const COMPONENTS = "components.json";

export class Validator {
  // Strict: a keyword Ajv does not know, or a type it cannot check, is an error.
  private readonly ajv = new Ajv({ strict: true, allErrors: true });
  private readonly operations: { method: string; path: RegExp; params: number; op: Operation }[];
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly seen = new Set<string>();

  constructor(document: OpenApiDocument) {
    addFormats(this.ajv);
    // An OpenAPI annotation that is not JSON Schema (Ajv knows `nullable` already).
    this.ajv.addKeyword("example");
    this.ajv.addSchema({ $id: COMPONENTS, definitions: localRefs(document.components.schemas) });
    this.operations = Object.entries(document.paths).flatMap(([template, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.has(method))
        .map(([method, op]) => ({
          method,
          path: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`),
          params: (template.match(/\{/g) ?? []).length,
          op,
        })),
    );
    // A literal segment wins over a parameter: /groups/join is not /groups/{group_id}.
    this.operations.sort((a, b) => a.params - b.params);
  }

  /** What is wrong with an exchange, by the document: nothing, or one line per problem. */
  check(exchange: Exchange): string[] {
    const where = `${exchange.method.toUpperCase()} ${exchange.url.pathname} ${exchange.status}`;
    const found = this.operations.find(
      (o) => o.method === exchange.method && o.path.test(exchange.url.pathname),
    );
    if (found === undefined) return [`${where}: no such operation in the document`];
    const response = found.op.responses[String(exchange.status)];
    if (response === undefined) return [`${where}: status not in the document`];
    this.seen.add(`${found.op.operationId} ${exchange.status}`);
    if (response.content === undefined) {
      return exchange.text === "" ? [] : [`${where}: a body where the document has none`];
    }
    const media = response.content["application/json"];
    if (media === undefined || !exchange.contentType.startsWith("application/json")) {
      return [`${where}: Content-Type ${exchange.contentType}`];
    }
    const validate = this.compile(media.schema);
    if (validate(JSON.parse(exchange.text))) return [];
    return [`${where}: ${this.ajv.errorsText(validate.errors)}\n  ${exchange.text}`];
  }

  private compile(schema: object): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile(localRefs(schema));
      this.compiled.set(key, validate);
    }
    return validate;
  }
}

/** ``#/components/schemas/X`` as a reference Ajv resolves: X in COMPONENTS. */
function localRefs<T>(schema: T): T {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${COMPONENTS}#/definitions/`),
  ) as T;
}

// --- a run -------------------------------------------------------------------------

async function main(
  name: string,
  connect: (baseUrl: string, fetch: Recorder["fetch"]) => FlowClient,
): Promise<void> {
  const config = JSON.parse(process.env["FLOW_CONFIG"] ?? "") as FlowConfig;
  const served = await globalThis.fetch(`${config.base_url}/openapi.json`);
  const validator = new Validator((await served.json()) as OpenApiDocument);
  const recorder = new Recorder();
  await runFlow(connect(config.base_url, recorder.fetch), config.users);
  const problems = recorder.exchanges.flatMap((exchange) => validator.check(exchange));
  assert.deepEqual(problems, [], `responses unlike the document:\n${problems.join("\n")}`);
  // One line for the test to read: what was checked.
  console.log(
    JSON.stringify({
      client: name,
      exchanges: recorder.exchanges.length,
      seen: [...validator.seen].sort(),
    }),
  );
}

export function run(
  name: string,
  connect: (baseUrl: string, fetch: Recorder["fetch"]) => FlowClient,
): void {
  main(name, connect).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
