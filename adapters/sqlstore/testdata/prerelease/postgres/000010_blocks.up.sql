-- Blocks (adapters/sqlstore/engine/block.go): the compactor turns a device's chunks of a
-- window that is over into one row of its series. Such rows are large enough for
-- PostgreSQL to compress (MAIN: compressed and kept in the row, out of line only when they
-- would not fit), which takes them to well under a byte a sample; head chunks stay under
-- the 2 kB threshold and are stored as they are. The view's decoder learns blocks.
ALTER TABLE chunks ALTER COLUMN data SET STORAGE MAIN;
-- An IEEE 754 binary64, little-endian, at pos (0-based): the values the store could not
-- write as integers.
CREATE FUNCTION telemetry_float8(data bytea, pos integer) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b     integer[] := ARRAY[get_byte(data, pos), get_byte(data, pos + 1), get_byte(data, pos + 2), get_byte(data, pos + 3),
                             get_byte(data, pos + 4), get_byte(data, pos + 5), get_byte(data, pos + 6), get_byte(data, pos + 7)];
    ex    integer := ((b[8] & 127) << 4) | (b[7] >> 4);
    mant  bigint  := ((b[7] & 15)::bigint << 48) | (b[6]::bigint << 40) | (b[5]::bigint << 32) | (b[4]::bigint << 24)
                   | (b[3]::bigint << 16) | (b[2]::bigint << 8) | b[1]::bigint;
    value double precision;
BEGIN
    IF ex = 0 THEN
        value := mant::double precision * power(2::double precision, -1074);
    ELSE
        value := (1 + mant::double precision / 4503599627370496.0) * power(2::double precision, ex - 1023);
    END IF;
    RETURN CASE WHEN b[8] >= 128 THEN -value ELSE value END;
END
$$;

CREATE OR REPLACE FUNCTION telemetry_chunk_points(data bytea)
RETURNS TABLE (ts bigint, metric_id integer, value double precision, container text, pod text, namespace text)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    pos     integer := 1; -- the next byte, 0-based, after the version
    version integer := get_byte(data, 0);
    works   text[]  := '{}';
    nw      bigint;
    n       bigint;
    i       bigint;
    u       bigint;
    w       bigint;
    whole   boolean;
    mant    bigint;
    len     bigint;
    s       text;
    k       integer;
    times   bigint[];
    delta   bigint;
    runs    bigint[];
    kind    integer;
    at      bigint;
BEGIN
    IF version NOT IN (1, 2, 3) THEN
        RAISE EXCEPTION 'chunk version % is not one this view reads', version;
    END IF;
    -- uvarint: seven bits a byte, low first
    nw := 0; k := 0;
    LOOP u := get_byte(data, pos); pos := pos + 1; nw := nw | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
    FOR j IN 1 .. nw * 3 LOOP
        len := 0; k := 0;
        LOOP u := get_byte(data, pos); pos := pos + 1; len := len | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
        s := convert_from(substring(data FROM pos + 1 FOR len::integer), 'UTF8');
        pos := pos + len::integer;
        works := works || s;
    END LOOP;
    IF version = 3 THEN -- a block: the times once, then each series' runs and values
        n := 0; k := 0;
        LOOP u := get_byte(data, pos); pos := pos + 1; n := n | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
        times := array_fill(0::bigint, ARRAY[n::integer]);
        delta := 0;
        FOR i IN 1 .. n LOOP
            w := 0; k := 0;
            LOOP u := get_byte(data, pos); pos := pos + 1; w := w | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
            w := CASE WHEN w & 1 = 0 THEN w >> 1 ELSE ~(w >> 1) END;
            IF i = 1 THEN
                times[1] := w;
            ELSE
                delta := delta + w;
                times[i] := times[i - 1] + delta;
            END IF;
        END LOOP;
        nw := 0; k := 0; -- the series
        LOOP u := get_byte(data, pos); pos := pos + 1; nw := nw | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
        FOR j IN 1 .. nw LOOP
            metric_id := 0; k := 0;
            LOOP u := get_byte(data, pos); pos := pos + 1; metric_id := metric_id | ((u & 127) << k)::integer; k := k + 7; EXIT WHEN u < 128; END LOOP;
            w := 0; k := 0;
            LOOP u := get_byte(data, pos); pos := pos + 1; w := w | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
            IF w > 0 THEN
                container := works[(w - 1) * 3 + 1]; pod := works[(w - 1) * 3 + 2]; namespace := works[(w - 1) * 3 + 3];
            ELSE
                container := ''; pod := ''; namespace := '';
            END IF;
            len := 0; k := 0;
            LOOP u := get_byte(data, pos); pos := pos + 1; len := len | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
            runs := array_fill(0::bigint, ARRAY[len::integer]);
            FOR r IN 1 .. len LOOP
                w := 0; k := 0;
                LOOP u := get_byte(data, pos); pos := pos + 1; w := w | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
                runs[r] := w;
            END LOOP;
            kind := get_byte(data, pos); pos := pos + 1;
            at := 0; mant := 0;
            FOR r IN 1 .. len LOOP
                IF r % 2 = 0 THEN -- runs alternate: absent, present, …
                    FOR t IN at + 1 .. at + runs[r] LOOP
                        ts := times[t];
                        IF kind > 0 THEN -- m / 10^(kind - 1), m a running sum of zigzag varints
                            u := 0; k := 0;
                            LOOP w := get_byte(data, pos); pos := pos + 1; u := u | ((w & 127) << k); k := k + 7; EXIT WHEN w < 128; END LOOP;
                            mant := mant + CASE WHEN u & 1 = 0 THEN u >> 1 ELSE ~(u >> 1) END;
                            value := mant::double precision / power(10::double precision, kind - 1);
                        ELSE -- IEEE 754 binary64, little-endian
                            value := telemetry_float8(data, pos);
                            pos := pos + 8;
                        END IF;
                        RETURN NEXT;
                    END LOOP;
                END IF;
                at := at + runs[r];
            END LOOP;
        END LOOP;
        RETURN;
    END IF;
    n := 0; k := 0;
    LOOP u := get_byte(data, pos); pos := pos + 1; n := n | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
    ts := 0;
    FOR i IN 0 .. n - 1 LOOP
        -- time: a zigzag varint first, then uvarint deltas
        w := 0; k := 0;
        LOOP u := get_byte(data, pos); pos := pos + 1; w := w | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
        IF i = 0 THEN
            ts := CASE WHEN w & 1 = 0 THEN w >> 1 ELSE ~(w >> 1) END;
        ELSE
            ts := ts + w;
        END IF;
        metric_id := 0; k := 0;
        LOOP u := get_byte(data, pos); pos := pos + 1; metric_id := metric_id | ((u & 127) << k)::integer; k := k + 7; EXIT WHEN u < 128; END LOOP;
        w := 0; k := 0;
        LOOP u := get_byte(data, pos); pos := pos + 1; w := w | ((u & 127) << k); k := k + 7; EXIT WHEN u < 128; END LOOP;
        whole := false;
        IF version > 1 THEN
            whole := w & 1 = 1;
            w := w >> 1;
        END IF;
        IF w > 0 THEN
            container := works[(w - 1) * 3 + 1]; pod := works[(w - 1) * 3 + 2]; namespace := works[(w - 1) * 3 + 3];
        ELSE
            container := ''; pod := ''; namespace := '';
        END IF;
        IF whole THEN -- a zigzag varint
            u := 0; k := 0;
            LOOP mant := get_byte(data, pos); pos := pos + 1; u := u | ((mant & 127) << k); k := k + 7; EXIT WHEN mant < 128; END LOOP;
            value := CASE WHEN u & 1 = 0 THEN u >> 1 ELSE ~(u >> 1) END;
        ELSE -- IEEE 754 binary64, little-endian
            value := telemetry_float8(data, pos);
            pos := pos + 8;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
