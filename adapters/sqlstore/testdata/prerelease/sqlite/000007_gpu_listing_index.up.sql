-- GPU listings are paged by (hostname, gpu_index, uuid): one index walk per page.
CREATE INDEX gpus_listing_idx ON gpus (hostname, gpu_index, uuid);
DROP INDEX gpus_hostname_idx;
