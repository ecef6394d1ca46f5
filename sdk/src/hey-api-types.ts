/**
 * Request bodies as a caller writes them, against @hey-api/openapi-ts's types,
 * under exactOptionalPropertyTypes (tsconfig.hey-api-types.json): its bundled
 * client runtime (client/, core/) is not clean under that flag, so
 * tsconfig.hey-api.json leaves it off; the types the document makes are
 * checked with it here. Compiled only, never run.
 */
import type {
  CreateInviteData,
  GroupCreate,
  InviteCreate,
  Join,
} from "../generated/hey-api/types.gen";

// Every field of an invite is optional: the server fills in the defaults.
export const onlyMaxUses: InviteCreate = { max_uses: 2 };
export const empty: NonNullable<CreateInviteData["body"]> = {};
export const nameOnly: GroupCreate = { name: "SDK Family" };
export const nullDescription: GroupCreate = { name: "SDK Family", description: null };
export const join: Join = { code: "ABC-234-XYZ" };
