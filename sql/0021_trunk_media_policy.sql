-- Issue 19: a media policy per customer trunk. A media_policies row may name a trunk
-- (trunk_name, alone): its settings apply to the inbound calls warpd routes to that trunk (a
-- vendor delivering a call to one of the trunk's numbers), before the customer's row; for each
-- setting the most specific row that sets it wins (trunk, then BAN+route, route, BAN).
-- Plain text like customer_ban and route_name (no foreign key): a row naming an unknown trunk
-- never matches, and provisioning can replace trunks freely.
ALTER TABLE media_policies
    ADD COLUMN trunk_name text CHECK (trunk_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

-- a row names a trunk alone, or a BAN and/or a route
ALTER TABLE media_policies DROP CONSTRAINT media_policies_check;
ALTER TABLE media_policies ADD CONSTRAINT media_policies_keys CHECK (
    CASE WHEN trunk_name IS NOT NULL THEN customer_ban IS NULL AND route_name IS NULL
         ELSE customer_ban IS NOT NULL OR route_name IS NOT NULL END);

ALTER TABLE media_policies DROP CONSTRAINT media_policies_customer_ban_route_name_key;
ALTER TABLE media_policies ADD CONSTRAINT media_policies_key
    UNIQUE NULLS NOT DISTINCT (customer_ban, route_name, trunk_name);
