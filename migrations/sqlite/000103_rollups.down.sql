DROP TABLE rollup_floors;
DROP TABLE rollups;
