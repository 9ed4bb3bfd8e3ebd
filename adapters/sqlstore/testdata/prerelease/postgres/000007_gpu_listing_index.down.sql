CREATE INDEX gpus_hostname_idx ON gpus (hostname);
DROP INDEX gpus_listing_idx;
