DROP TABLE sessions;
DROP TABLE user_queues;
DROP TABLE users;
