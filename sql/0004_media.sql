-- Media policy (issue 4): per customer (BAN) and/or route, what warpd adds to the RTPEngine
-- offer of a call. A row names a BAN, a route name or both; for each setting the most specific
-- row that sets it (NULL = inherit) wins: BAN+route, then route, then BAN.
-- Keys are plain text (no foreign keys) so provisioning can replace customers and routes freely;
-- a row naming an unknown BAN or route simply never matches.
CREATE TABLE media_policies (
    id           bigserial PRIMARY KEY,
    customer_ban text CHECK (customer_ban <> ''),
    route_name   text CHECK (route_name <> ''),
    -- record the call (RTPEngine `record call: yes`, metadata `ban:<BAN>|route:<route>`)
    record       boolean,
    -- none: nothing done; passthrough: T.38 passes as is; gateway: T.38 offers are decoded to
    -- G.711 audio by RTPEngine (`T.38: [decode]`)
    t38_mode     text CHECK (t38_mode IN ('none', 'passthrough', 'gateway')),
    -- only these codecs are offered onward (RTPEngine `codec: {strip: [all], except: [...]}`)
    codec_allow  text[],
    -- these codecs are removed from the offer (`codec: {strip: [...]}`)
    codec_strip  text[],
    CHECK (customer_ban IS NOT NULL OR route_name IS NOT NULL),
    UNIQUE NULLS NOT DISTINCT (customer_ban, route_name)
);

-- warpd's media controller reloads policies on the same channel as routing data
CREATE TRIGGER media_policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON media_policies
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change();
