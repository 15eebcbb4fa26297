-- issue 22: the deck diff joins a version's prefix rows and its OCN/LATA rows separately (so the
-- planner knows the join's size). A version's OCN/LATA rows (prefix IS NULL) are found through
-- this partial index: a prefix deck has none, and without it the OCN/LATA half of the diff read
-- every row of both versions again to find none. Only OCN/LATA rows are indexed, so prefix
-- decks' imports do not maintain it.
CREATE INDEX deck_rates_ocn_lata ON deck_rates (version_id) WHERE prefix IS NULL;
