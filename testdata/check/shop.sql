-- testdata/check/shop.sql: a small production-like snapshot for `pgbranchdiff check`,
-- as pg_dump writes it (plain format) — testdata/shop.sql loaded and dumped:
--   pg_dump --no-owner --no-privileges -d shop | grep -v '^\\\(un\)\?restrict'
-- (the \restrict lines of recent pg_dump releases are left out so that older psql can read it).
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: billing; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA billing;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: invoices; Type: TABLE; Schema: billing; Owner: -
--

CREATE TABLE billing.invoices (
    id uuid NOT NULL,
    order_id bigint NOT NULL,
    payload jsonb NOT NULL
);


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    at timestamp with time zone NOT NULL,
    message text NOT NULL
);


--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    id bigint NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    country character(2),
    created_at timestamp with time zone DEFAULT '2024-01-01 00:00:00+00'::timestamp with time zone NOT NULL
);


--
-- Name: legacy_coupons; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.legacy_coupons (
    code text NOT NULL,
    percent integer NOT NULL
);


--
-- Name: orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.orders (
    id bigint NOT NULL,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    amount numeric(12,4) NOT NULL,
    note text
);


--
-- Data for Name: invoices; Type: TABLE DATA; Schema: billing; Owner: -
--

COPY billing.invoices (id, order_id, payload) FROM stdin;
00000000-0000-0000-0000-000000000001	1	{"total": 10, "currency": "EUR"}
00000000-0000-0000-0000-000000000002	2	{"total": 20, "currency": "EUR"}
00000000-0000-0000-0000-000000000003	3	{"total": 30, "currency": "EUR"}
00000000-0000-0000-0000-000000000004	4	{"total": 40, "currency": "EUR"}
00000000-0000-0000-0000-000000000005	5	{"total": 50, "currency": "EUR"}
00000000-0000-0000-0000-000000000006	6	{"total": 60, "currency": "EUR"}
00000000-0000-0000-0000-000000000007	7	{"total": 70, "currency": "EUR"}
00000000-0000-0000-0000-000000000008	8	{"total": 80, "currency": "EUR"}
00000000-0000-0000-0000-000000000009	9	{"total": 90, "currency": "EUR"}
00000000-0000-0000-0000-000000000010	10	{"total": 100, "currency": "EUR"}
00000000-0000-0000-0000-000000000011	11	{"total": 110, "currency": "EUR"}
00000000-0000-0000-0000-000000000012	12	{"total": 120, "currency": "EUR"}
00000000-0000-0000-0000-000000000013	13	{"total": 130, "currency": "EUR"}
00000000-0000-0000-0000-000000000014	14	{"total": 140, "currency": "EUR"}
00000000-0000-0000-0000-000000000015	15	{"total": 150, "currency": "EUR"}
00000000-0000-0000-0000-000000000016	16	{"total": 160, "currency": "EUR"}
00000000-0000-0000-0000-000000000017	17	{"total": 170, "currency": "EUR"}
00000000-0000-0000-0000-000000000018	18	{"total": 180, "currency": "EUR"}
00000000-0000-0000-0000-000000000019	19	{"total": 190, "currency": "EUR"}
00000000-0000-0000-0000-000000000020	20	{"total": 200, "currency": "EUR"}
\.


--
-- Data for Name: audit_log; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit_log (at, message) FROM stdin;
2024-01-01 10:00:00+00	boot
2024-01-01 10:00:00+00	boot
2024-01-02 10:00:00+00	deploy
\.


--
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.customers (id, email, name, country, created_at) FROM stdin;
1	user1@example.com	User 1	FR	2024-01-01 00:00:00+00
2	user2@example.com	User 2	US	2024-01-01 00:00:00+00
3	user3@example.com	User 3	JP	2024-01-01 00:00:00+00
4	user4@example.com	User 4	DE	2024-01-01 00:00:00+00
5	user5@example.com	User 5	FR	2024-01-01 00:00:00+00
6	user6@example.com	User 6	US	2024-01-01 00:00:00+00
7	user7@example.com	User 7	JP	2024-01-01 00:00:00+00
8	user8@example.com	User 8	DE	2024-01-01 00:00:00+00
9	user9@example.com	User 9	FR	2024-01-01 00:00:00+00
10	user10@example.com	User 10	US	2024-01-01 00:00:00+00
11	user11@example.com	User 11	JP	2024-01-01 00:00:00+00
12	user12@example.com	User 12	DE	2024-01-01 00:00:00+00
13	user13@example.com	User 13	FR	2024-01-01 00:00:00+00
14	user14@example.com	User 14	US	2024-01-01 00:00:00+00
15	user15@example.com	User 15	JP	2024-01-01 00:00:00+00
16	user16@example.com	User 16	DE	2024-01-01 00:00:00+00
17	user17@example.com	User 17	FR	2024-01-01 00:00:00+00
18	user18@example.com	User 18	US	2024-01-01 00:00:00+00
19	user19@example.com	User 19	JP	2024-01-01 00:00:00+00
20	user20@example.com	User 20	DE	2024-01-01 00:00:00+00
21	user21@example.com	User 21	FR	2024-01-01 00:00:00+00
22	user22@example.com	User 22	US	2024-01-01 00:00:00+00
23	user23@example.com	User 23	JP	2024-01-01 00:00:00+00
24	user24@example.com	User 24	DE	2024-01-01 00:00:00+00
25	user25@example.com	User 25	FR	2024-01-01 00:00:00+00
26	user26@example.com	User 26	US	2024-01-01 00:00:00+00
27	user27@example.com	User 27	JP	2024-01-01 00:00:00+00
28	user28@example.com	User 28	DE	2024-01-01 00:00:00+00
29	user29@example.com	User 29	FR	2024-01-01 00:00:00+00
30	user30@example.com	User 30	US	2024-01-01 00:00:00+00
31	user31@example.com	User 31	JP	2024-01-01 00:00:00+00
32	user32@example.com	User 32	DE	2024-01-01 00:00:00+00
33	user33@example.com	User 33	FR	2024-01-01 00:00:00+00
34	user34@example.com	User 34	US	2024-01-01 00:00:00+00
35	user35@example.com	User 35	JP	2024-01-01 00:00:00+00
36	user36@example.com	User 36	DE	2024-01-01 00:00:00+00
37	user37@example.com	User 37	FR	2024-01-01 00:00:00+00
38	user38@example.com	User 38	US	2024-01-01 00:00:00+00
39	user39@example.com	User 39	JP	2024-01-01 00:00:00+00
40	user40@example.com	User 40	DE	2024-01-01 00:00:00+00
41	user41@example.com	User 41	FR	2024-01-01 00:00:00+00
42	user42@example.com	User 42	US	2024-01-01 00:00:00+00
43	user43@example.com	User 43	JP	2024-01-01 00:00:00+00
44	user44@example.com	User 44	DE	2024-01-01 00:00:00+00
45	user45@example.com	User 45	FR	2024-01-01 00:00:00+00
46	user46@example.com	User 46	US	2024-01-01 00:00:00+00
47	user47@example.com	User 47	JP	2024-01-01 00:00:00+00
48	user48@example.com	User 48	DE	2024-01-01 00:00:00+00
49	user49@example.com	User 49	FR	2024-01-01 00:00:00+00
50	user50@example.com	User 50	US	2024-01-01 00:00:00+00
\.


--
-- Data for Name: legacy_coupons; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.legacy_coupons (code, percent) FROM stdin;
WELCOME	10
SUMMER	15
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, customer_id, status, amount, note) FROM stdin;
1	2	paid	0.0800	\N
2	3	shipped	0.1500	\N
3	4	new	0.2200	\N
4	5	paid	0.2900	\N
5	6	shipped	0.3600	\N
6	7	new	0.4300	\N
8	9	shipped	0.5700	\N
9	10	new	0.6400	\N
10	11	paid	0.7100	\N
11	12	shipped	0.7800	\N
12	13	new	0.8500	\N
13	14	paid	0.9200	\N
14	15	shipped	0.9900	\N
15	16	new	1.0600	\N
16	17	paid	1.1300	\N
17	18	shipped	1.2000	\N
18	19	new	1.2700	\N
19	20	paid	1.3400	\N
20	21	shipped	1.4100	\N
21	22	new	1.4800	\N
22	23	paid	1.5500	\N
23	24	shipped	1.6200	\N
24	25	new	1.6900	\N
25	26	paid	1.7600	\N
26	27	shipped	1.8300	\N
27	28	new	1.9000	\N
28	29	paid	1.9700	\N
29	30	shipped	2.0400	\N
30	31	new	2.1100	\N
31	32	paid	2.1800	\N
32	33	shipped	2.2500	\N
33	34	new	2.3200	\N
34	35	paid	2.3900	\N
35	36	shipped	2.4600	\N
36	37	new	2.5300	\N
37	38	paid	2.6000	\N
38	39	shipped	2.6700	\N
39	40	new	2.7400	\N
40	41	paid	2.8100	\N
41	42	shipped	2.8800	\N
42	43	new	2.9500	\N
43	44	paid	3.0200	\N
44	45	shipped	3.0900	\N
45	46	new	3.1600	\N
46	47	paid	3.2300	\N
47	48	shipped	3.3000	\N
48	49	new	3.3700	\N
49	50	paid	3.4400	\N
50	1	shipped	3.5100	\N
51	2	new	3.5800	\N
52	3	paid	3.6500	\N
53	4	shipped	3.7200	\N
54	5	new	3.7900	\N
55	6	paid	3.8600	\N
56	7	shipped	3.9300	\N
57	8	new	4.0000	\N
58	9	paid	4.0700	\N
59	10	shipped	4.1400	\N
60	11	new	4.2100	\N
61	12	paid	4.2800	\N
62	13	shipped	4.3500	\N
63	14	new	4.4200	\N
64	15	paid	4.4900	\N
65	16	shipped	4.5600	\N
66	17	new	4.6300	\N
67	18	paid	4.7000	\N
68	19	shipped	4.7700	\N
69	20	new	4.8400	\N
70	21	paid	4.9100	\N
71	22	shipped	4.9800	\N
72	23	new	5.0500	\N
73	24	paid	5.1200	\N
74	25	shipped	5.1900	\N
75	26	new	5.2600	\N
76	27	paid	5.3300	\N
77	28	shipped	5.4000	\N
78	29	new	5.4700	\N
79	30	paid	5.5400	\N
80	31	shipped	5.6100	\N
81	32	new	5.6800	\N
82	33	paid	5.7500	\N
83	34	shipped	5.8200	\N
84	35	new	5.8900	\N
85	36	paid	5.9600	\N
86	37	shipped	6.0300	\N
87	38	new	6.1000	\N
88	39	paid	6.1700	\N
89	40	shipped	6.2400	\N
90	41	new	6.3100	\N
91	42	paid	6.3800	\N
92	43	shipped	6.4500	\N
93	44	new	6.5200	\N
94	45	paid	6.5900	\N
95	46	shipped	6.6600	\N
96	47	new	6.7300	\N
97	48	paid	6.8000	\N
98	49	shipped	6.8700	\N
99	50	new	6.9400	\N
100	1	paid	7.0100	\N
101	2	shipped	7.0800	\N
102	3	new	7.1500	\N
103	4	paid	7.2200	\N
104	5	shipped	7.2900	\N
105	6	new	7.3600	\N
106	7	paid	7.4300	\N
107	8	shipped	7.5000	\N
108	9	new	7.5700	\N
109	10	paid	7.6400	\N
110	11	shipped	7.7100	\N
111	12	new	7.7800	\N
112	13	paid	7.8500	\N
113	14	shipped	7.9200	\N
114	15	new	7.9900	\N
115	16	paid	8.0600	\N
116	17	shipped	8.1300	\N
117	18	new	8.2000	\N
118	19	paid	8.2700	\N
119	20	shipped	8.3400	\N
120	21	new	8.4100	\N
121	22	paid	8.4800	\N
122	23	shipped	8.5500	\N
123	24	new	8.6200	\N
124	25	paid	8.6900	\N
125	26	shipped	8.7600	\N
126	27	new	8.8300	\N
127	28	paid	8.9000	\N
128	29	shipped	8.9700	\N
129	30	new	9.0400	\N
130	31	paid	9.1100	\N
131	32	shipped	9.1800	\N
132	33	new	9.2500	\N
133	34	paid	9.3200	\N
134	35	shipped	9.3900	\N
135	36	new	9.4600	\N
136	37	paid	9.5300	\N
137	38	shipped	9.6000	\N
138	39	new	9.6700	\N
139	40	paid	9.7400	\N
140	41	shipped	9.8100	\N
141	42	new	9.8800	\N
142	43	paid	9.9500	\N
143	44	shipped	0.0200	\N
144	45	new	0.0900	\N
145	46	paid	0.1600	\N
146	47	shipped	0.2300	\N
147	48	new	0.3000	\N
148	49	paid	0.3700	\N
149	50	shipped	0.4400	\N
150	1	new	0.5100	\N
151	2	paid	0.5800	\N
152	3	shipped	0.6500	\N
153	4	new	0.7200	\N
154	5	paid	0.7900	\N
155	6	shipped	0.8600	\N
156	7	new	0.9300	\N
157	8	paid	1.0000	\N
158	9	shipped	1.0700	\N
159	10	new	1.1400	\N
160	11	paid	1.2100	\N
161	12	shipped	1.2800	\N
162	13	new	1.3500	\N
163	14	paid	1.4200	\N
164	15	shipped	1.4900	\N
165	16	new	1.5600	\N
166	17	paid	1.6300	\N
167	18	shipped	1.7000	\N
168	19	new	1.7700	\N
169	20	paid	1.8400	\N
170	21	shipped	1.9100	\N
171	22	new	1.9800	\N
172	23	paid	2.0500	\N
173	24	shipped	2.1200	\N
174	25	new	2.1900	\N
175	26	paid	2.2600	\N
176	27	shipped	2.3300	\N
177	28	new	2.4000	\N
178	29	paid	2.4700	\N
179	30	shipped	2.5400	\N
180	31	new	2.6100	\N
181	32	paid	2.6800	\N
182	33	shipped	2.7500	\N
183	34	new	2.8200	\N
184	35	paid	2.8900	\N
185	36	shipped	2.9600	\N
186	37	new	3.0300	\N
187	38	paid	3.1000	\N
188	39	shipped	3.1700	\N
189	40	new	3.2400	\N
190	41	paid	3.3100	\N
191	42	shipped	3.3800	\N
192	43	new	3.4500	\N
193	44	paid	3.5200	\N
194	45	shipped	3.5900	\N
195	46	new	3.6600	\N
196	47	paid	3.7300	\N
197	48	shipped	3.8000	\N
198	49	new	3.8700	\N
199	50	paid	3.9400	\N
200	1	shipped	4.0100	\N
7	8	paid	2.4690	\N
\.


--
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: billing; Owner: -
--

ALTER TABLE ONLY billing.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);


--
-- Name: customers customers_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_email_key UNIQUE (email);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: legacy_coupons legacy_coupons_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.legacy_coupons
    ADD CONSTRAINT legacy_coupons_pkey PRIMARY KEY (code);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: orders orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);


--
-- PostgreSQL database dump complete
--


