/**
 * openapi-typescript's types (default flags) with openapi-fetch, through the flow.
 * Generated into ../generated/openapi-typescript.ts.
 */
import createClient from "openapi-fetch";

import type { components, paths } from "../generated/openapi-typescript";
import { type ApiErrorView, type Reply, hoursBetween, run } from "./harness";

type Schemas = components["schemas"];

/** What openapi-fetch answers: `data` on a documented success, `error` on a documented error. */
type Answer<T> =
  | { data: T; error?: never; response: Response }
  | { data?: never; error: Schemas["ApiError"]; response: Response };

function reply<T, U>(answer: Answer<T>, view: (data: T) => U): Reply<U> {
  const status = answer.response.status;
  if (answer.error !== undefined) {
    const error: ApiErrorView = answer.error;
    return { status, error };
  }
  return { status, data: view(answer.data as T) };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const group = (g: Schemas["Group"] | Schemas["JoinedGroup"]) => ({
  id: g.id,
  name: g.name,
  member_count: g.member_count,
});

run("openapi-fetch", (baseUrl, fetch) => {
  const client = createClient<paths>({ baseUrl, fetch });
  const inGroup = (groupId: string) => ({ params: { path: { group_id: groupId } } });
  const ofInvite = (groupId: string, inviteId: string) => ({
    params: { path: { group_id: groupId, invite_id: inviteId } },
  });
  return {
    createGroup: async (token, name) =>
      reply(await client.POST("/api/v1/groups", { body: { name }, headers: bearer(token) }), group),
    getGroup: async (token, groupId) =>
      reply(
        await client.GET("/api/v1/groups/{group_id}", {
          ...inGroup(groupId),
          headers: bearer(token),
        }),
        group,
      ),
    createInvite: async (token, groupId, maxUses) =>
      reply(
        await client.POST("/api/v1/groups/{group_id}/invites", {
          ...inGroup(groupId),
          body: { max_uses: maxUses },
          headers: bearer(token),
        }),
        (i: Schemas["Invite"]) => ({
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
      reply(
        await client.GET("/api/v1/groups/{group_id}/invites", {
          ...inGroup(groupId),
          headers: bearer(token),
        }),
        (list: Schemas["InviteList"]) =>
          list.data.map((i) => ({
            id: i.id,
            current_uses: i.current_uses,
            created_by: { id: i.created_by.id, display_name: i.created_by.display_name },
          })),
      ),
    getInviteStatus: async (token, groupId, inviteId) =>
      reply(
        await client.GET("/api/v1/groups/{group_id}/invites/{invite_id}", {
          ...ofInvite(groupId, inviteId),
          headers: bearer(token),
        }),
        (i: Schemas["InviteDetail"]) => i.status,
      ),
    revokeInvite: async (token, groupId, inviteId) =>
      reply(
        await client.DELETE("/api/v1/groups/{group_id}/invites/{invite_id}", {
          ...ofInvite(groupId, inviteId),
          headers: bearer(token),
        }),
        () => null,
      ),
    listRedemptions: async (token, groupId, inviteId) =>
      reply(
        await client.GET("/api/v1/groups/{group_id}/invites/{invite_id}/redemptions", {
          ...ofInvite(groupId, inviteId),
          headers: bearer(token),
        }),
        (list: Schemas["RedemptionList"]) =>
          list.data.map((r) => ({
            user_id: r.user_id,
            display_name: r.display_name,
            role: r.role,
          })),
      ),
    previewInvite: async (code) =>
      reply(
        await client.GET("/api/v1/invites/{code}", { params: { path: { code } } }),
        (p: Schemas["InvitePreview"]) => ({
          group_name: p.group.name,
          member_count: p.group.member_count,
          is_valid: p.is_valid,
          status: p.status,
        }),
      ),
    joinGroup: async (token, code) =>
      reply(
        await client.POST("/api/v1/groups/join", { body: { code }, headers: bearer(token) }),
        (j: Schemas["JoinResult"]) => ({
          group_id: j.group.id,
          member_count: j.group.member_count,
          role: j.membership.role,
        }),
      ),
  };
});
