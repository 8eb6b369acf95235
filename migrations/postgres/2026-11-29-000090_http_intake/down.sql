DROP TABLE http_intake_bodies;
DROP TABLE http_intake;
