-- Issue 17: where a recorded call's recording is. `recording` holds the file(s) the media node
-- named when it started recording (RTPEngine with --recording-method=pcap: the pcap path; its
-- metadata file is <recording-dir>/metadata/rtpengine-meta-<pcap name without .pcap>.txt), or
-- what Kamailio's call.end sent; `recording_node` is that RTPEngine node (its ng address as warpd
-- addresses it), so an operator knows which host holds the file. NULL: not recorded.
ALTER TABLE cdrs ADD COLUMN recording_node text;
COMMENT ON COLUMN cdrs.recording IS 'recording file(s) on recording_node (RTPEngine pcap path), or what Kamailio sent';
COMMENT ON COLUMN cdrs.recording_node IS 'RTPEngine node (ng address) holding the recording';
