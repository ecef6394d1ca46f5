/**
 * openapi-generator's typescript-fetch with its defaults, through the flow.
 * Generated into ../generated/typescript-fetch. Its models are camelCase with
 * Date objects; the flow's views are the wire's names and values.
 */
import {
  ApiErrorFromJSON,
  type ApiResponse,
  Configuration,
  GroupsApi,
  InvitesApi,
  ResponseError,
} from "../generated/typescript-fetch";
import type * as models from "../generated/typescript-fetch/models";
import { type Reply, hoursBetween, run } from "./harness";

/** A documented success, or the ApiError the client throws for a documented error. */
async function reply<T, U>(
  call: () => Promise<ApiResponse<T>>,
  view: (data: T) => U,
): Promise<Reply<U>> {
  try {
    const answer = await call();
    return { status: answer.raw.status, data: view(await answer.value()) };
  } catch (thrown) {
    if (!(thrown instanceof ResponseError)) throw thrown;
    const error = ApiErrorFromJSON(await thrown.response.json());
    return { status: thrown.response.status, error };
  }
}

const group = (g: models.Group | models.JoinedGroup) => ({
  id: g.id,
  name: g.name,
  member_count: g.memberCount,
});

run("typescript-fetch", (baseUrl, fetch) => {
  // One configuration per caller: the token is the configuration's accessToken.
  const as = (token?: string) => {
    const configuration = new Configuration({
      basePath: baseUrl,
      fetchApi: fetch,
      ...(token === undefined ? {} : { accessToken: token }),
    });
    return { groups: new GroupsApi(configuration), invites: new InvitesApi(configuration) };
  };
  return {
    createGroup: (token, name) =>
      reply(() => as(token).groups.createGroupRaw({ groupCreate: { name } }), group),
    getGroup: (token, groupId) => reply(() => as(token).groups.getGroupRaw({ groupId }), group),
    createInvite: (token, groupId, maxUses) =>
      reply(
        () => as(token).invites.createInviteRaw({ groupId, inviteCreate: { maxUses } }),
        (i) => ({
          id: i.id,
          group_id: i.groupId,
          code: i.code,
          preset_role: i.presetRole,
          max_uses: i.maxUses,
          current_uses: i.currentUses,
          expires_in_hours: hoursBetween(i.createdAt, i.expiresAt),
        }),
      ),
    listInvites: (token, groupId) =>
      reply(
        () => as(token).invites.listInvitesRaw({ groupId }),
        (list) =>
          list.data.map((i) => ({
            id: i.id,
            current_uses: i.currentUses,
            created_by: { id: i.createdBy.id, display_name: i.createdBy.displayName },
          })),
      ),
    getInviteStatus: (token, groupId, inviteId) =>
      reply(() => as(token).invites.getInviteRaw({ groupId, inviteId }), (i) => i.status),
    revokeInvite: (token, groupId, inviteId) =>
      reply(() => as(token).invites.revokeInviteRaw({ groupId, inviteId }), () => null),
    listRedemptions: (token, groupId, inviteId) =>
      reply(
        () => as(token).invites.listInviteRedemptionsRaw({ groupId, inviteId }),
        (list) =>
          list.data.map((r) => ({ user_id: r.userId, display_name: r.displayName, role: r.role })),
      ),
    previewInvite: (code) =>
      reply(
        () => as().invites.getInvitePreviewRaw({ code }),
        (p) => ({
          group_name: p.group.name,
          member_count: p.group.memberCount,
          is_valid: p.isValid,
          status: p.status,
        }),
      ),
    joinGroup: (token, code) =>
      reply(
        () => as(token).groups.joinGroupRaw({ join: { code } }),
        (j) => ({
          group_id: j.group.id,
          member_count: j.group.memberCount,
          role: j.membership.role,
        }),
      ),
  };
});
