-- Back to version 9: chunks uncompressed, the decoder without blocks.
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
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
    b       integer[];
    mant    bigint;
    ex      integer;
    len     bigint;
    s       text;
    k       integer;
BEGIN
    IF version NOT IN (1, 2) THEN
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
            b := ARRAY[get_byte(data, pos), get_byte(data, pos + 1), get_byte(data, pos + 2), get_byte(data, pos + 3),
                       get_byte(data, pos + 4), get_byte(data, pos + 5), get_byte(data, pos + 6), get_byte(data, pos + 7)];
            pos := pos + 8;
            ex := ((b[8] & 127) << 4) | (b[7] >> 4);
            mant := ((b[7] & 15)::bigint << 48) | (b[6]::bigint << 40) | (b[5]::bigint << 32) | (b[4]::bigint << 24)
                  | (b[3]::bigint << 16) | (b[2]::bigint << 8) | b[1]::bigint;
            IF ex = 0 THEN
                value := mant::double precision * power(2::double precision, -1074);
            ELSE
                value := (1 + mant::double precision / 4503599627370496.0) * power(2::double precision, ex - 1023);
            END IF;
            IF b[8] >= 128 THEN
                value := -value;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
DROP FUNCTION telemetry_float8(bytea, integer);
