/**
 * @hey-api/openapi-ts with its defaults (its fetch client), through the flow.
 * Generated into ../generated/hey-api.
 */
import { createClient, createConfig } from "../generated/hey-api/client";
import * as sdk from "../generated/hey-api/sdk.gen";
import type * as types from "../generated/hey-api/types.gen";
import { type ApiErrorView, type Reply, hoursBetween, run } from "./harness";

/** What an SDK function answers (its default, throwOnError false). */
type Answer<T> = ({ data: T; error: undefined } | { data: undefined; error: types.ApiError }) & {
  response: Response;
};

function reply<T, U>(answer: Answer<T>, view: (data: T) => U): Reply<U> {
  const status = answer.response.status;
  if (answer.error !== undefined) {
    const error: ApiErrorView = answer.error;
    return { status, error };
  }
  return { status, data: view(answer.data as T) };
}

const group = (g: types.Group | types.JoinedGroup) => ({
  id: g.id,
  name: g.name,
  member_count: g.member_count,
});

run("hey-api", (baseUrl, fetch) => {
  const client = createClient(createConfig({ baseUrl, fetch }));
  // The token goes where the document's bearerAuth says, through the client's `auth`.
  const as = (token: string) => ({ client, auth: token });
  return {
    createGroup: async (token, name) =>
      reply(await sdk.createGroup({ ...as(token), body: { name } }), group),
    getGroup: async (token, groupId) =>
      reply(await sdk.getGroup({ ...as(token), path: { group_id: groupId } }), group),
    createInvite: async (token, groupId, maxUses) =>
      reply(
        await sdk.createInvite({
          ...as(token),
          path: { group_id: groupId },
          body: { max_uses: maxUses },
        }),
        (i: types.Invite) => ({
          id: i.id,
          group_id: i.group_id,
          code: i.code,
          preset_role: i.preset_role,
          max_uses: i.max_uses,
          current_uses: i.current_uses,
          expires_in_hours: hoursBetween(i.created_at, i.expires_at),
        }),
      ),
    listInvites: async (token, groupId) =>
      reply(await sdk.listInvites({ ...as(token), path: { group_id: groupId } }), (list) =>
        list.data.map((i) => ({
          id: i.id,
          current_uses: i.current_uses,
          created_by: { id: i.created_by.id, display_name: i.created_by.display_name },
        })),
      ),
    getInviteStatus: async (token, groupId, inviteId) =>
      reply(
        await sdk.getInvite({ ...as(token), path: { group_id: groupId, invite_id: inviteId } }),
        (i) => i.status,
      ),
    revokeInvite: async (token, groupId, inviteId) =>
      reply(
        await sdk.revokeInvite({ ...as(token), path: { group_id: groupId, invite_id: inviteId } }),
        () => null,
      ),
    listRedemptions: async (token, groupId, inviteId) =>
      reply(
        await sdk.listInviteRedemptions({
          ...as(token),
          path: { group_id: groupId, invite_id: inviteId },
        }),
        (list) =>
          list.data.map((r) => ({
            user_id: r.user_id,
            display_name: r.display_name,
            role: r.role,
          })),
      ),
    previewInvite: async (code) =>
      reply(await sdk.getInvitePreview({ client, path: { code } }), (p) => ({
        group_name: p.group.name,
        member_count: p.group.member_count,
        is_valid: p.is_valid,
        status: p.status,
      })),
    joinGroup: async (token, code) =>
      reply(await sdk.joinGroup({ ...as(token), body: { code } }), (j) => ({
        group_id: j.group.id,
        member_count: j.group.member_count,
        role: j.membership.role,
      })),
  };
});
